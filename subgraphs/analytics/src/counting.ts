/**
 * Counting events into the figures, inside the inbox transaction that records them (ADR 0023). The
 * same function serves the live consumer (every generation that follows the live events) and a
 * rebuild (its one generation), for one event or a partition's batch alike, so a retry applying an
 * event on its own leaves exactly what the batch would have.
 *
 * One batch is a handful of statements whatever its size: lock the generations, insert the placed
 * orders' facts, read the facts the other events need, record the events per generation (the
 * duplicates drop out there), then add each generation's deltas to its buckets and product hours.
 * Every statement writes its rows in one fixed order (generation, then key, byte order), so two
 * transactions on the same rows wait for each other but never deadlock.
 */
import type { AfterCommit, EntityManager, Logger } from '@swiftcart/platform';
import { type CountedEvent, type OrderFacts, type Tally, orderFactsOf, tally } from './buckets.ts';
import { BUCKET_COLUMNS, type BucketRow, type GenerationState, type SalesBucketRecord, toBucketRecord } from './entities.ts';

/** Which generations a consumer counts into. */
export type CountTarget =
  /** The live consumer: every generation CURRENT or FOLLOWING at the moment its transaction looks. */
  | { readonly kind: 'live' }
  /** A rebuild: its own generation, while it is BUILDING or FOLLOWING (nothing once it is not). */
  | { readonly kind: 'rebuild'; readonly generation: number };

/** What counting needs besides the transaction and the events. */
export interface CountContext {
  readonly log: Logger;
  /** The inbox transaction's: what runs once the figures have committed. */
  readonly afterCommit: AfterCommit;
  /** Publishes the committed buckets of the CURRENT generation (after commit). */
  readonly announce?: (buckets: readonly SalesBucketRecord[]) => Promise<void>;
  /** Told, after commit, how long each event counted into the CURRENT generation took from `occurredAt` (seconds). */
  readonly observeLag?: (seconds: readonly number[]) => void;
}

interface GenerationRow {
  readonly id: number;
  readonly state: GenerationState;
}

/**
 * The advisory lock that orders counting against a rebuild's state changes: every counting
 * transaction holds it shared, a state change (the flip to FOLLOWING, the swap) takes it
 * exclusively. PostgreSQL queues advisory lock requests fairly, so a waiting state change holds
 * back later counting transactions instead of waiting for a gap that steady load never leaves
 * (row locks FOR SHARE would let them overtake it).
 */
export const GENERATION_LOCK_KEY = 0x616e_616c;

/**
 * The generations to count into, read under {@link GENERATION_LOCK_KEY} (shared) until the
 * transaction ends: a rebuild's state change waits for every transaction counting into the
 * generations, and every later one sees the new state (each statement reads what has committed).
 */
async function lockGenerations(em: EntityManager, target: CountTarget): Promise<GenerationRow[]> {
  await em.execute('select pg_advisory_xact_lock_shared(?)', [GENERATION_LOCK_KEY]);
  if (target.kind === 'live') {
    const rows = await em.execute<GenerationRow[]>(`select id, state from analytics_generation where state in ('CURRENT', 'FOLLOWING') order by id`);
    return rows;
  }
  const rows = await em.execute<GenerationRow[]>('select id, state from analytics_generation where id = ?', [target.generation]);
  return rows.filter((g) => g.state === 'BUILDING' || g.state === 'FOLLOWING');
}

/** The facts of the orders `events` name that their own OrderPlaced events do not bring: from analytics_order. */
async function orderFacts(em: EntityManager, events: readonly CountedEvent[]): Promise<Map<string, OrderFacts>> {
  const orders = new Map<string, OrderFacts>();
  const placed = events.filter((e): e is Extract<CountedEvent, { type: 'OrderPlaced' }> => e.type === 'OrderPlaced');
  if (placed.length > 0) {
    const facts = placed.map(orderFactsOf);
    await em.execute(
      `
      insert into analytics_order (order_id, currency, total_amount, lines, placed_at)
      select o.order_id, o.currency, o.total_amount, o.lines, o.placed_at
      from jsonb_to_recordset(?::jsonb) as o(order_id uuid, currency text, total_amount bigint, lines jsonb, placed_at timestamptz)
      order by o.order_id
      on conflict (order_id) do nothing`,
      [
        JSON.stringify(
          facts.map((order, i) => ({
            order_id: order.orderId,
            currency: order.currency,
            total_amount: order.totalAmount,
            lines: order.lines,
            placed_at: placed[i].occurredAt,
          })),
        ),
      ],
    );
    for (const order of facts) orders.set(order.orderId, order);
  }
  const wanted = [...new Set(events.filter((e) => e.type !== 'OrderPlaced' && e.type !== 'PaymentRefunded').map((e) => e.data.orderId.toLowerCase()))].filter(
    (id) => !orders.has(id),
  );
  if (wanted.length > 0) {
    const rows = await em.execute<{ order_id: string; currency: string; total_amount: string | number; lines: OrderFacts['lines'] }[]>(
      `select order_id, currency, total_amount, lines from analytics_order
       where order_id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
      [JSON.stringify(wanted)],
    );
    for (const row of rows)
      orders.set(row.order_id, { orderId: row.order_id, currency: row.currency, totalAmount: Number(row.total_amount), lines: row.lines });
  }
  return orders;
}

/** Records `events` as counted into each generation; returns, per generation, the ids that were not counted there before. */
async function recordEvents(em: EntityManager, generations: readonly number[], events: readonly CountedEvent[]): Promise<Map<number, Set<string>>> {
  const rows = await em.execute<{ generation: number; event_id: string }[]>(
    `
    insert into analytics_event (generation, event_id, event_type, occurred_at)
    select g.id, e.id, e.type, e.occurred_at
    from jsonb_to_recordset(?::jsonb) as g(id integer)
    cross join jsonb_to_recordset(?::jsonb) as e(id uuid, type text, occurred_at timestamptz)
    order by g.id, e.id
    on conflict (generation, event_id) do nothing
    returning generation, event_id`,
    [JSON.stringify(generations.map((id) => ({ id }))), JSON.stringify(events.map((e) => ({ id: e.id, type: e.type, occurred_at: e.occurredAt })))],
  );
  const fresh = new Map(generations.map((g) => [g, new Set<string>()]));
  for (const row of rows) fresh.get(Number(row.generation))!.add(row.event_id.toLowerCase());
  return fresh;
}

/** Adds each generation's bucket deltas; returns the buckets as they are now, with their generation. */
async function addToBuckets(em: EntityManager, tallies: ReadonlyMap<number, Tally>): Promise<{ generation: number; bucket: SalesBucketRecord }[]> {
  const rows = [...tallies].flatMap(([generation, t]) =>
    t.buckets.map((b) => ({
      generation,
      granularity: b.granularity,
      currency: b.currency,
      start: b.start,
      orders_placed: b.ordersPlaced,
      orders_confirmed: b.ordersConfirmed,
      orders_cancelled: b.ordersCancelled,
      orders_rejected: b.ordersRejected,
      revenue: b.revenue,
      refunds: b.refunds,
      units_sold: b.unitsSold,
      version: b.events,
    })),
  );
  if (rows.length === 0) return [];
  const updated = await em.execute<(BucketRow & { generation: number })[]>(
    `
    insert into sales_bucket as b (generation, granularity, currency, start, orders_placed, orders_confirmed, orders_cancelled,
                                   orders_rejected, revenue, refunds, units_sold, version)
    select d.generation, d.granularity, d.currency, d.start, d.orders_placed, d.orders_confirmed, d.orders_cancelled,
           d.orders_rejected, d.revenue, d.refunds, d.units_sold, d.version
    from jsonb_to_recordset(?::jsonb) as d(generation integer, granularity text, currency text, start timestamptz, orders_placed integer,
         orders_confirmed integer, orders_cancelled integer, orders_rejected integer, revenue bigint, refunds bigint, units_sold bigint, version integer)
    order by d.generation, d.granularity collate "C", d.currency collate "C", d.start
    on conflict (generation, granularity, currency, start) do update set
      orders_placed = b.orders_placed + excluded.orders_placed,
      orders_confirmed = b.orders_confirmed + excluded.orders_confirmed,
      orders_cancelled = b.orders_cancelled + excluded.orders_cancelled,
      orders_rejected = b.orders_rejected + excluded.orders_rejected,
      revenue = b.revenue + excluded.revenue,
      refunds = b.refunds + excluded.refunds,
      units_sold = b.units_sold + excluded.units_sold,
      version = b.version + excluded.version,
      updated_at = now()
    returning generation, ${BUCKET_COLUMNS}`,
    [JSON.stringify(rows)],
  );
  return updated.map((row) => ({ generation: Number(row.generation), bucket: toBucketRecord(row) }));
}

/** Adds each generation's product deltas. */
async function addToProducts(em: EntityManager, tallies: ReadonlyMap<number, Tally>): Promise<void> {
  const rows = [...tallies].flatMap(([generation, t]) =>
    t.products.map((p) => ({ generation, currency: p.currency, hour: p.hour, sku: p.sku, units_sold: p.unitsSold, revenue: p.revenue })),
  );
  if (rows.length === 0) return;
  await em.execute(
    `
    insert into product_sales as p (generation, currency, hour, sku, units_sold, revenue)
    select d.generation, d.currency, d.hour, d.sku, d.units_sold, d.revenue
    from jsonb_to_recordset(?::jsonb) as d(generation integer, currency text, hour timestamptz, sku text, units_sold bigint, revenue bigint)
    order by d.generation, d.currency collate "C", d.hour, d.sku collate "C"
    on conflict (generation, currency, hour, sku) do update set
      units_sold = p.units_sold + excluded.units_sold,
      revenue = p.revenue + excluded.revenue`,
    [JSON.stringify(rows)],
  );
}

/**
 * Counts `events` (of one partition, in offset order) into the generations of `target`, each event
 * at most once per generation, inside the caller's (the inbox's) transaction. After the commit,
 * the changed buckets of the CURRENT generation are announced.
 */
export async function countEvents(em: EntityManager, given: readonly CountedEvent[], target: CountTarget, context: CountContext): Promise<void> {
  // The first copy of an event id counts (the inbox does the same for a batch).
  const seen = new Set<string>();
  const events = given.filter((e) => !seen.has(e.id.toLowerCase()) && seen.add(e.id.toLowerCase()));
  if (events.length === 0) return;
  const generations = await lockGenerations(em, target);
  if (generations.length === 0) {
    // A rebuild whose generation was abandoned or swapped in meanwhile: nothing left to count into.
    context.log.info({ target, events: events.length }, 'no generation to count into; events skipped');
    return;
  }
  const orders = await orderFacts(em, events);
  const fresh = await recordEvents(
    em,
    generations.map((g) => g.id),
    events,
  );
  const tallies = new Map<number, Tally>();
  for (const { id } of generations) {
    const counted = events.filter((e) => fresh.get(id)!.has(e.id.toLowerCase()));
    if (counted.length > 0) tallies.set(id, tally(counted, orders));
  }
  const unmatched = new Map([...tallies.values()].flatMap((t) => t.unmatched.map((e) => [e.id, e] as const)));
  if (unmatched.size > 0) {
    context.log.warn(
      { events: [...unmatched.values()].map((e) => ({ id: e.id, type: e.type, orderId: e.data.orderId })) },
      'events about orders whose OrderPlaced was never counted: their currency is unknown, so they count nowhere',
    );
  }
  const buckets = await addToBuckets(em, tallies);
  await addToProducts(em, tallies);

  const current = generations.find((g) => g.state === 'CURRENT')?.id;
  if (current === undefined) return;
  const announced = buckets.filter((b) => b.generation === current).map((b) => b.bucket);
  const currentIds = fresh.get(current)!;
  const counted = events.filter((e) => currentIds.has(e.id.toLowerCase()) && !unmatched.has(e.id));
  context.afterCommit(async () => {
    if (context.observeLag && counted.length > 0) {
      const now = Date.now();
      context.observeLag(counted.map((e) => Math.max(0, (now - Date.parse(e.occurredAt)) / 1000)));
    }
    if (context.announce && announced.length > 0) await context.announce(announced);
  });
}
