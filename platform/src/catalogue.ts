/**
 * A service's own replica of the catalogue's prices and statuses, fed by the product service's
 * events (event-carried state transfer, ADR 0008): the order service prices orders from it, the cart
 * service refuses unknown and discontinued skus and warns of changed prices from it, so neither asks
 * the product service anything while it serves a request. `version` is the product's version, so an
 * older or replayed event never overwrites a newer price.
 */
import { defineEntity, p } from '@mikro-orm/core';
import type { EntityManager } from './database.ts';
import type { Money } from './generated/events.ts';
import { type ConsumerSpec, type EventHandler, defineConsumer } from './inbox.ts';
import type { AnyEventOf, EventOf } from './events.ts';

/** Whether a replicated catalogue entry can be ordered; mirrors the product service's statuses. */
export const CATALOGUE_STATUSES = ['ACTIVE', 'DISCONTINUED'] as const;
export type CatalogueStatus = (typeof CATALOGUE_STATUSES)[number];

/**
 * The replica's table, as the shipped migrations create it (order 0001, cart 0001). Frozen
 * (platform/test/catalogue.test.ts pins it): a change to the table is a new migration of each
 * service that has it, never an edit here.
 */
export const CATALOGUE_TABLE_SQL = `
  create table catalogue_price (
    sku text primary key check (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    price_amount integer not null check (price_amount >= 0),
    currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
    status text not null check (status in ('ACTIVE', 'DISCONTINUED')),
    version integer not null check (version >= 1),
    updated_at timestamptz not null default now()
  )`;

/** One replicated catalogue entry. */
export const CataloguePrice = defineEntity({
  name: 'CataloguePrice',
  tableName: 'catalogue_price',
  properties: {
    sku: p.text().primary(),
    priceAmount: p.integer(),
    currency: p.string(),
    status: p.string().$type<CatalogueStatus>(),
    version: p.integer(),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** A replica row as MikroORM hands it out. */
export type CataloguePriceEntity = InstanceType<typeof CataloguePrice.class>;

/** What the replica knows of one sku. */
export interface CatalogueEntry {
  readonly sku: string;
  readonly price: Money;
  readonly status: CatalogueStatus;
  readonly version: number;
}

/**
 * The replica's entries of `skus` (those it has), by sku, in one query. Plain SQL: a cart's read
 * path runs it on every request, and the ORM's hydration of 20 rows cost three times the query.
 */
export async function readCatalogue(em: EntityManager, skus: readonly string[]): Promise<Map<string, CatalogueEntry>> {
  if (skus.length === 0) return new Map();
  const rows = await em.execute<{ sku: string; price_amount: number; currency: string; status: CatalogueStatus; version: number }[]>(
    'select sku, price_amount, currency, status, version from catalogue_price where sku in (?)',
    [[...skus]],
  );
  return new Map(
    rows.map((row) => [row.sku, { sku: row.sku, price: { amount: row.price_amount, currency: row.currency }, status: row.status, version: row.version }]),
  );
}

/**
 * ProductCreated / ProductUpdated: upserts the sku's price, currency and status, but only when the
 * event's product version is newer than the stored one, so a stale or replayed event never
 * overwrites a newer price. One statement, so two events of one sku cannot interleave.
 */
const onProductChanged: EventHandler<AnyEventOf<'ProductCreated' | 'ProductUpdated'>> = async (em, event, ctx) => {
  const { sku, price, status, version } = event.data;
  const applied = await em.execute<{ sku: string }[]>(
    `
    insert into catalogue_price (sku, price_amount, currency, status, version, updated_at)
    values (?, ?, ?, ?, ?, now())
    on conflict (sku) do update
      set price_amount = excluded.price_amount, currency = excluded.currency, status = excluded.status,
          version = excluded.version, updated_at = now()
      where catalogue_price.version < excluded.version
    returning sku`,
    [sku, price.amount, price.currency, status, version],
  );
  if (applied.length === 0) ctx.log.debug({ sku, version, eventId: event.id }, 'stale product event ignored');
};

/**
 * ProductDiscontinued: marks the sku DISCONTINUED at the event's version, when newer. A sku the
 * replica has never seen gets a tombstone (no price: 0 in XXX, ISO 4217's "no currency") that
 * keeps its version, so an older ProductCreated arriving later cannot make it orderable again.
 */
const onProductDiscontinued: EventHandler<EventOf<'ProductDiscontinued'>> = async (em, event, ctx) => {
  const { sku, version } = event.data;
  const applied = await em.execute<{ sku: string }[]>(
    `
    insert into catalogue_price (sku, price_amount, currency, status, version, updated_at)
    values (?, 0, 'XXX', 'DISCONTINUED', ?, now())
    on conflict (sku) do update
      set status = 'DISCONTINUED', version = excluded.version, updated_at = now()
      where catalogue_price.version < excluded.version
    returning sku`,
    [sku, version],
  );
  if (applied.length === 0) ctx.log.debug({ sku, version, eventId: event.id }, 'stale product event ignored');
};

/** The consumer (named `consumer`, which is also its inbox's name) that keeps a service's replica. */
export function catalogueConsumer(consumer: string): ConsumerSpec {
  return defineConsumer({
    consumer,
    handlers: { ProductCreated: onProductChanged, ProductUpdated: onProductChanged, ProductDiscontinued: onProductDiscontinued },
  });
}
