/**
 * The arithmetic of the sales figures, pure (no database, no clock): which hour and day an instant
 * falls in (UTC), which buckets a range holds, and what a run of events adds to each bucket and to
 * each product's hour. counting.ts writes what {@link tally} computes; unit-tested in
 * test/buckets.test.ts.
 */
import type { AnyEventOf } from '@swiftcart/platform';

/** The length of a sales bucket; mirrors the GraphQL enum `SalesGranularity` and the `sales_bucket.granularity` check. */
export const GRANULARITIES = ['HOUR', 'DAY'] as const;
export type Granularity = (typeof GRANULARITIES)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** How long a bucket of each granularity is. UTC has no daylight saving, so a day is always 24 hours. */
export const BUCKET_MS: Readonly<Record<Granularity, number>> = { HOUR: HOUR_MS, DAY: DAY_MS };

/** The most buckets one `salesSummary` returns. */
export const MAX_SUMMARY_BUCKETS = 1_000;

/** The start of the bucket of `granularity` that `at` (ms since the epoch, or a Date) falls in. */
export function bucketStart(granularity: Granularity, at: number | Date): Date {
  const ms = typeof at === 'number' ? at : at.getTime();
  const length = BUCKET_MS[granularity];
  return new Date(Math.floor(ms / length) * length);
}

/** How many buckets of `granularity` start in [from, to); 0 when none does (or from is not before to). */
export function countBucketStarts(granularity: Granularity, from: Date, to: Date): number {
  const length = BUCKET_MS[granularity];
  const first = Math.ceil(from.getTime() / length);
  const end = Math.ceil(to.getTime() / length);
  return Math.max(0, end - first);
}

/**
 * The starts of the buckets of `granularity` that start in [from, to), oldest first. A bucket that
 * starts before `from` is not one of them even when `from` falls inside it: a range names the
 * buckets it holds whole at its start. Throws RangeError past `max` buckets (check with
 * {@link countBucketStarts} first to answer the client).
 */
export function bucketStartsIn(granularity: Granularity, from: Date, to: Date, max = MAX_SUMMARY_BUCKETS): Date[] {
  const count = countBucketStarts(granularity, from, to);
  if (count > max) throw new RangeError(`${count} buckets of ${granularity} from ${from.toISOString()} to ${to.toISOString()}, more than ${max}`);
  const length = BUCKET_MS[granularity];
  const first = Math.ceil(from.getTime() / length) * length;
  return Array.from({ length: count }, (_, i) => new Date(first + i * length));
}

/** The event types the sales figures are counted from. */
export const COUNTED_EVENT_TYPES = ['OrderPlaced', 'OrderConfirmed', 'OrderCancelled', 'OrderRejected', 'PaymentRefunded'] as const;
export type CountedEventType = (typeof COUNTED_EVENT_TYPES)[number];

/** One event the figures are counted from, as its contract describes it. */
export type CountedEvent = AnyEventOf<CountedEventType>;

/** One line of a placed order, as analytics keeps it. */
export interface OrderLine {
  readonly sku: string;
  readonly quantity: number;
  /** The unit price in minor units of the order's currency. */
  readonly unitAmount: number;
}

/**
 * What OrderPlaced says of an order, kept (analytics_order) for the later events of the order that
 * do not repeat it: OrderConfirmed names skus and quantities only, OrderCancelled and OrderRejected
 * no money at all.
 */
export interface OrderFacts {
  readonly orderId: string;
  readonly currency: string;
  /** The order's total in minor units. */
  readonly totalAmount: number;
  readonly lines: readonly OrderLine[];
}

/** The facts of the order an OrderPlaced event places (order ids canonical, lower-case). */
export function orderFactsOf(event: AnyEventOf<'OrderPlaced'>): OrderFacts {
  const { orderId, total, items } = event.data;
  return {
    orderId: orderId.toLowerCase(),
    currency: total.currency,
    totalAmount: total.amount,
    lines: items.map((item) => ({ sku: item.sku, quantity: item.quantity, unitAmount: item.unitPrice.amount })),
  };
}

/** The counters of a bucket: what {@link tally} adds to one, and what a bucket holds. */
export interface BucketFigures {
  readonly ordersPlaced: number;
  readonly ordersConfirmed: number;
  readonly ordersCancelled: number;
  readonly ordersRejected: number;
  /** Totals of the orders confirmed, minor units. */
  readonly revenue: number;
  /** Amounts refunded, minor units. */
  readonly refunds: number;
  readonly unitsSold: number;
}

/** A bucket's figures with nothing counted. */
export const ZERO_FIGURES: BucketFigures = Object.freeze({
  ordersPlaced: 0,
  ordersConfirmed: 0,
  ordersCancelled: 0,
  ordersRejected: 0,
  revenue: 0,
  refunds: 0,
  unitsSold: 0,
});

/** What some events add to one bucket. */
export interface BucketDelta extends BucketFigures {
  readonly granularity: Granularity;
  /** The bucket's start, ISO-8601. */
  readonly start: string;
  readonly currency: string;
  /** How many of the events count in this bucket: what its version grows by. */
  readonly events: number;
}

/** What some events add to one product's sales in one hour and currency (topProducts). */
export interface ProductDelta {
  /** The hour's start, ISO-8601. */
  readonly hour: string;
  readonly currency: string;
  readonly sku: string;
  readonly unitsSold: number;
  readonly revenue: number;
}

/** What {@link tally} found. */
export interface Tally {
  /** Ordered by granularity, currency, start: the order the rows are written (and locked) in. */
  readonly buckets: readonly BucketDelta[];
  /** Ordered by currency, hour, sku. */
  readonly products: readonly ProductDelta[];
  /** Events about an order whose OrderPlaced analytics never saw: counted nowhere, since their currency is unknown. */
  readonly unmatched: readonly CountedEvent[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * What `events` add to the buckets (one hour and one day each, by the event's `occurredAt`, in its
 * currency) and to the products' hours:
 * - OrderPlaced: `ordersPlaced` + 1, in the order total's currency;
 * - OrderConfirmed: `ordersConfirmed` + 1, `revenue` + the order's total, `unitsSold` + its units;
 *   each line's units and `quantity × unitPrice` to its sku's hour;
 * - OrderCancelled, OrderRejected: `ordersCancelled` or `ordersRejected` + 1, in the order's currency;
 * - PaymentRefunded: `refunds` + the amount, in its currency.
 * `orders` holds the facts of every order the events name (OrderConfirmed, OrderCancelled and
 * OrderRejected carry no prices or currency); an event whose order is not there is `unmatched`.
 */
export function tally(events: readonly CountedEvent[], orders: ReadonlyMap<string, OrderFacts>): Tally {
  const buckets = new Map<string, Mutable<BucketDelta>>();
  const products = new Map<string, Mutable<ProductDelta>>();
  const unmatched: CountedEvent[] = [];

  const add = (occurredAt: string, currency: string, figures: Partial<BucketFigures>) => {
    for (const granularity of GRANULARITIES) {
      const start = bucketStart(granularity, Date.parse(occurredAt)).toISOString();
      const key = `${granularity}|${currency}|${start}`;
      let delta = buckets.get(key);
      if (!delta) buckets.set(key, (delta = { granularity, start, currency, ...ZERO_FIGURES, events: 0 }));
      delta.events++;
      for (const [name, value] of Object.entries(figures) as [keyof BucketFigures, number][]) delta[name] += value;
    }
  };
  const addProduct = (occurredAt: string, currency: string, line: OrderLine) => {
    const hour = bucketStart('HOUR', Date.parse(occurredAt)).toISOString();
    const key = `${currency}|${hour}|${line.sku}`;
    let delta = products.get(key);
    if (!delta) products.set(key, (delta = { hour, currency, sku: line.sku, unitsSold: 0, revenue: 0 }));
    delta.unitsSold += line.quantity;
    delta.revenue += line.quantity * line.unitAmount;
  };

  for (const event of events) {
    switch (event.type) {
      case 'OrderPlaced':
        add(event.occurredAt, event.data.total.currency, { ordersPlaced: 1 });
        break;
      case 'PaymentRefunded':
        add(event.occurredAt, event.data.amount.currency, { refunds: event.data.amount.amount });
        break;
      case 'OrderConfirmed':
      case 'OrderCancelled':
      case 'OrderRejected': {
        const order = orders.get(event.data.orderId.toLowerCase());
        if (!order) {
          unmatched.push(event);
          break;
        }
        if (event.type === 'OrderCancelled') add(event.occurredAt, order.currency, { ordersCancelled: 1 });
        else if (event.type === 'OrderRejected') add(event.occurredAt, order.currency, { ordersRejected: 1 });
        else {
          const units = order.lines.reduce((sum, line) => sum + line.quantity, 0);
          add(event.occurredAt, order.currency, { ordersConfirmed: 1, revenue: order.totalAmount, unitsSold: units });
          for (const line of order.lines) addProduct(event.occurredAt, order.currency, line);
        }
        break;
      }
    }
  }
  return {
    buckets: [...buckets.values()].sort((a, b) => compare(a.granularity, b.granularity) || compare(a.currency, b.currency) || compare(a.start, b.start)),
    products: [...products.values()].sort((a, b) => compare(a.currency, b.currency) || compare(a.hour, b.hour) || compare(a.sku, b.sku)),
    unmatched,
  };
}
