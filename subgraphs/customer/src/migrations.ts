import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreateCustomer extends Migration {
  override up(): void {
    this.addSql(`
      create table customer (
        id text primary key check (length(id) between 1 and 200),
        email text check (length(email) between 3 and 254 and email like '%_@_%'),
        name text check (length(name) between 1 and 200),
        phone text check (phone ~ '^\\+[1-9][0-9]{7,14}$'),
        notify_email boolean not null default true,
        notify_sms boolean not null default false,
        version integer not null default 1,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        -- SMS needs a number to send to.
        constraint customer_sms_needs_phone check (not notify_sms or phone is not null)
      )`);
    this.addSql(`
      create table address (
        id uuid primary key,
        customer_id text not null references customer (id) on delete cascade,
        name text not null check (length(name) between 1 and 200),
        line1 text not null check (length(line1) between 1 and 200),
        line2 text check (length(line2) between 1 and 200),
        city text not null check (length(city) between 1 and 100),
        postal_code text not null check (length(postal_code) between 1 and 20),
        country char(2) not null check (country ~ '^[A-Z]{2}$'),
        is_default boolean not null default false,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql('create index address_customer_id on address (customer_id, id)');
    // At most one default address per customer, whatever two requests do at once.
    this.addSql('create unique index address_one_default on address (customer_id) where is_default');
  }
}

/** The customer database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_create_customer', class: CreateCustomer }];
