import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreatePayment extends Migration {
  override up(): void {
    this.addSql(`
      create table payment (
        id uuid primary key,
        order_id uuid not null,
        customer_id text not null check (length(customer_id) between 1 and 200),
        status text not null default 'PENDING'
          check (status in ('PENDING', 'AUTHORIZED', 'DECLINED', 'FAILED', 'REFUNDED')),
        amount integer not null check (amount >= 0),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        method text not null check (length(method) between 1 and 200),
        attempts integer not null default 0 check (attempts >= 0),
        failure_reason text,
        provider_ref text,
        version integer not null default 1,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        -- One payment per order: a redelivered StockReserved can never charge twice.
        constraint payment_order_id_unique unique (order_id)
      )`);
    this.addSql(`
      create table refund (
        id uuid primary key,
        payment_id uuid not null references payment (id),
        amount integer not null check (amount > 0),
        created_at timestamptz not null default now()
      )`);
    this.addSql('create index refund_payment_idx on refund (payment_id)');
  }
}

class CreateCancelledOrder extends Migration {
  override up(): void {
    // The orders payment has seen cancelled: a payment request for one of them is never charged,
    // or is refunded at once, whatever order its events arrive (or are replayed) in.
    this.addSql(`
      create table cancelled_order (
        order_id uuid primary key,
        cancelled_at timestamptz not null default now()
      )`);
  }
}

/** The payment database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [
  { name: '0001_create_payment', class: CreatePayment },
  { name: '0002_cancelled_order', class: CreateCancelledOrder },
];
