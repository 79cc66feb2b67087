import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreateProduct extends Migration {
  override up(): void {
    this.addSql(`
      create table product (
        sku text primary key check (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
        name text not null check (length(name) between 1 and 200),
        description text not null default '' check (length(description) <= 5000),
        price_amount integer not null check (price_amount >= 0),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        status text not null default 'ACTIVE' check (status in ('ACTIVE', 'DISCONTINUED')),
        version integer not null default 1,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
  }
}

/** The product database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_create_product', class: CreateProduct }];
