import { CATALOGUE_TABLE_SQL, Migration, type NamedMigration } from '@swiftcart/platform';

class CreateOrders extends Migration {
  override up(): void {
    this.addSql(`
      create table orders (
        id uuid primary key,
        customer_id text not null check (length(customer_id) between 1 and 200),
        status text not null default 'PENDING'
          check (status in ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED')),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        total_amount integer not null check (total_amount >= 0),
        idempotency_key text not null check (length(idempotency_key) between 1 and 200),
        request_hash text not null,
        deadline_at timestamptz not null,
        version integer not null default 1,
        -- Millisecond precision, so the (created_at, id) cursor round-trips through a JS Date exactly.
        created_at timestamptz(3) not null default now(),
        updated_at timestamptz not null default now(),
        constraint orders_customer_idempotency_key unique (customer_id, idempotency_key)
      )`);
    // myOrders: one customer's orders, newest first, ties broken by id.
    this.addSql('create index orders_customer_created_idx on orders (customer_id, created_at desc, id)');
    // The saga's deadline sweep only looks at orders still in flight.
    this.addSql(`create index orders_deadline_idx on orders (deadline_at) where status in ('PENDING', 'AWAITING_PAYMENT')`);
    this.addSql(`
      create table order_item (
        order_id uuid not null references orders (id) on delete cascade,
        sku text not null check (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
        quantity integer not null check (quantity > 0),
        unit_price_amount integer not null check (unit_price_amount >= 0),
        primary key (order_id, sku)
      )`);
    this.addSql(`
      create table order_transition (
        id bigserial primary key,
        order_id uuid not null references orders (id) on delete cascade,
        status text not null
          check (status in ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED')),
        at timestamptz not null default now(),
        event_type text,
        event_id uuid,
        reason text
      )`);
    this.addSql('create index order_transition_order_idx on order_transition (order_id, at, id)');
    this.addSql(CATALOGUE_TABLE_SQL);
  }
}

/**
 * Where an order goes and how it is paid: both are part of the placement (and of its request hash).
 * placeOrder did not exist before this migration, so no real order lacks them; rows a developer
 * inserted by hand get an obvious placeholder (payment method `unknown`, which payment declines,
 * country `ZZ`). The defaults exist only for that fill and are dropped at once, so every new row
 * must name both, and the checks hold for every row, old ones included.
 */
class AddShippingAddressAndPaymentMethod extends Migration {
  override up(): void {
    this.addSql(`
      alter table orders
        add column shipping_address jsonb not null
          default '{"name": "unknown", "line1": "unknown", "city": "unknown", "postalCode": "unknown", "country": "ZZ"}'::jsonb,
        add column payment_method text not null default 'unknown'`);
    this.addSql('alter table orders alter column shipping_address drop default, alter column payment_method drop default');
    this.addSql(`
      alter table orders
        add constraint orders_shipping_address_check check (
          jsonb_typeof(shipping_address) = 'object'
          and shipping_address->>'name' is not null and shipping_address->>'line1' is not null
          and shipping_address->>'city' is not null and shipping_address->>'postalCode' is not null
          and shipping_address->>'country' ~ '^[A-Z]{2}$'
        ),
        add constraint orders_payment_method_check check (length(payment_method) between 1 and 100)`);
    // The deadline sweep (status in PENDING/AWAITING_PAYMENT, deadline_at < now) is served by
    // orders_deadline_idx from 0001: no new index.
  }

  override down(): void {
    this.addSql('alter table orders drop column shipping_address, drop column payment_method');
  }
}

/** Admission control reads the oldest PENDING order many times a second: an index of just those. */
class AddPendingCreatedIndex extends Migration {
  override up(): void {
    this.addSql(`create index orders_pending_created_idx on orders (created_at) where status = 'PENDING'`);
  }

  override down(): void {
    this.addSql('drop index if exists orders_pending_created_idx');
  }
}

/**
 * The customers' saved addresses, copied from CustomerRegistered / CustomerUpdated, so placeOrder
 * can ship to one by its id without asking the customer service. `customer_replica` holds the
 * version each customer's copy is at: an older event changes nothing.
 */
class AddCustomerAddressReplica extends Migration {
  override up(): void {
    this.addSql(`
      create table customer_replica (
        customer_id text primary key check (length(customer_id) between 1 and 200),
        version integer not null check (version >= 1),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table customer_address (
        id uuid primary key,
        customer_id text not null references customer_replica (customer_id) on delete cascade,
        address jsonb not null
      )`);
    this.addSql('create index customer_address_customer_idx on customer_address (customer_id)');
  }

  override down(): void {
    this.addSql('drop table if exists customer_address');
    this.addSql('drop table if exists customer_replica');
  }
}

/** The order database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [
  { name: '0001_create_orders', class: CreateOrders },
  { name: '0002_orders_shipping_and_payment', class: AddShippingAddressAndPaymentMethod },
  { name: '0003_orders_pending_created_idx', class: AddPendingCreatedIndex },
  { name: '0004_customer_address_replica', class: AddCustomerAddressReplica },
];
