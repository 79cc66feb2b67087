import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreateNotification extends Migration {
  override up(): void {
    // What the messages need from other services, copied from their events: the order's lines and
    // customer (OrderPlaced), and how to reach the customer (CustomerRegistered / CustomerUpdated).
    this.addSql(`
      create table order_summary (
        order_id uuid primary key,
        customer_id text not null check (length(customer_id) between 1 and 200),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        total_amount integer not null check (total_amount >= 0),
        items jsonb not null check (jsonb_typeof(items) = 'array'),
        placed_at timestamptz not null
      )`);
    this.addSql(`
      create table customer_contact (
        customer_id text primary key check (length(customer_id) between 1 and 200),
        email text,
        name text,
        phone text,
        email_enabled boolean not null,
        sms_enabled boolean not null,
        version integer not null check (version >= 1),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table notification (
        id uuid primary key,
        event_id uuid not null,
        channel text not null check (channel in ('EMAIL', 'SMS')),
        kind text not null check (kind in ('ORDER_PLACED', 'ORDER_CONFIRMED', 'ORDER_CANCELLED', 'ORDER_REJECTED', 'ORDER_SHIPPED', 'ORDER_DELIVERED', 'REFUND_ISSUED')),
        order_id uuid not null,
        -- Null until known: a shipment or payment event names only the order, whose OrderPlaced
        -- (on another topic) may not have been read yet.
        customer_id text check (length(customer_id) between 1 and 200),
        details jsonb not null default '{}'::jsonb,
        subject text not null check (length(subject) between 1 and 200),
        recipient text,
        status text not null default 'PENDING' check (status in ('PENDING', 'SENDING', 'SENT', 'FAILED', 'SKIPPED', 'UNCERTAIN')),
        status_reason text check (length(status_reason) <= 1000),
        attempts integer not null default 0 check (attempts >= 0),
        next_attempt_at timestamptz not null default now(),
        lease_until timestamptz,
        sent_at timestamptz,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        -- One message per event and channel: a redelivered event can never send twice.
        constraint notification_event_channel_unique unique (event_id, channel),
        constraint notification_sent_at check (status <> 'SENT' or sent_at is not null),
        constraint notification_sending_lease check (status <> 'SENDING' or lease_until is not null)
      )`);
    // The sender's queue: only what may still be sent, soonest first.
    this.addSql(`create index notification_due_idx on notification (next_attempt_at, id) where status = 'PENDING'`);
    this.addSql(`create index notification_sending_idx on notification (lease_until) where status = 'SENDING'`);
    this.addSql(`create index notification_customer_idx on notification (customer_id, id desc)`);
    this.addSql(`create index notification_order_idx on notification (order_id, id)`);
    // What the development SMS provider "sends": there is no real SMS sink here.
    this.addSql(`
      create table sms_message (
        id uuid primary key,
        recipient text not null,
        body text not null,
        created_at timestamptz not null default now()
      )`);
  }
}

/** The notification database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_create_notification', class: CreateNotification }];
