import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreateStock extends Migration {
  override up(): void {
    // The checks are the last line of defence: whatever the SQL above them does, stock on hand
    // never goes below zero and never below what is reserved.
    this.addSql(`
      create table stock (
        sku text primary key check (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
        on_hand integer not null check (on_hand >= 0),
        reserved integer not null default 0 check (reserved >= 0 and reserved <= on_hand),
        version integer not null default 1 check (version >= 1),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table stock_adjustment (
        id bigint generated always as identity primary key,
        sku text not null references stock (sku),
        delta integer not null check (delta <> 0),
        reason text not null check (length(reason) between 1 and 500),
        actor text not null,
        on_hand_after integer not null check (on_hand_after >= 0),
        created_at timestamptz not null default now()
      )`);
    this.addSql('create index stock_adjustment_sku_created_at_idx on stock_adjustment (sku, created_at)');
    this.addSql(`
      create table reservation (
        id uuid primary key,
        order_id text not null,
        sku text not null references stock (sku),
        quantity integer not null check (quantity > 0),
        status text not null default 'RESERVED' check (status in ('RESERVED', 'COMMITTED', 'RELEASED')),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (order_id, sku)
      )`);
    this.addSql(`create index reservation_sku_reserved_idx on reservation (sku) where status = 'RESERVED'`);
  }
}

/** The inventory database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_create_stock', class: CreateStock }];
