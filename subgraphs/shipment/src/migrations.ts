import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreateShipment extends Migration {
  override up(): void {
    this.addSql(`
      create table shipment (
        id uuid primary key,
        order_id uuid not null,
        customer_id text not null check (length(customer_id) between 1 and 200),
        status text not null default 'PENDING' check (status in ('PENDING', 'DISPATCHED', 'DELIVERED', 'CANCELLED')),
        carrier text check (length(carrier) between 1 and 100),
        tracking_number text check (length(tracking_number) between 1 and 100),
        dispatched_at timestamptz,
        delivered_at timestamptz,
        version integer not null default 1,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        -- One shipment per order: a redelivered OrderConfirmed can never ship twice.
        constraint shipment_order_id_unique unique (order_id),
        -- A dispatched or delivered shipment always says who carries it, under which number, since when.
        constraint shipment_dispatch_details check (
          status not in ('DISPATCHED', 'DELIVERED')
          or (carrier is not null and tracking_number is not null and dispatched_at is not null)),
        constraint shipment_delivery_details check (status <> 'DELIVERED' or delivered_at is not null)
      )`);
  }
}

/** The shipment database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_create_shipment', class: CreateShipment }];
