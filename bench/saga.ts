/**
 * `npm run bench -- saga`: the order saga end to end against the running `npm start` stack, in one
 * of three modes.
 *
 * Closed loop (the default):
 * 1. Reads the stock of SKU-0001..SKU-<skus> through the gateway (15 aliased `stockLevel`s a request,
 *    the gateway's alias limit; a read refused with 429 waits its Retry-After and goes again).
 * 2. Placing: `--customers` closed-loop customers, each with its own token (`bench-<n>`, customer)
 *    and socket, in a separate process (bench/saga-worker.ts), place one-line orders for random
 *    skus for `--duration` seconds, as fast as the API answers. placeOrder's HTTP round trip is
 *    the latency.
 * 3. At the end of placing: orders not yet terminal and the outbox backlog of every service (read
 *    from the databases when they are reachable), and the RSS and CPU of the gateway and the five
 *    services (/healthz for the gateway, /proc/<pid> of the process listening on each port).
 * 4. Drain: waits until every order of the run is terminal (CONFIRMED/REJECTED/CANCELLED, or past
 *    CONFIRMED) and the stock has settled, or `--drain-timeout`.
 * 5. Reads every order's timeline (admin token, 15 orders a request): PENDING→AWAITING_PAYMENT
 *    (stock reserved) and PENDING→CONFIRMED from the timeline's own timestamps, so measuring them
 *    puts no polling load on the stack while it works.
 * 6. Checks stock conservation per sku: initial onHand = available + reserved + sold, where sold is
 *    the units of the run's confirmed orders, and reserved is back where it started.
 * 7. With the databases readable, splits every event hop of the run (outbox row → consumer's inbox
 *    row, joined by event id) into the relay's part and the Kafka-and-consumer part.
 *
 * Open loop (`--search`, `--overload`): placements start on a schedule, an offered rate of orders a
 * second handed to the customers in turn (at least `--customers` of them, more when the rate would
 * pass half of a customer's gateway rate limit), whether or not earlier ones were answered (up to
 * OPEN_LOOP_MAX_IN_FLIGHT, 256, in flight; a start more than LATE_START_MS, 100 ms, behind its time
 * counts as late).
 * - `--search` warms the stack up for `--warmup` seconds at `--rate-start` (not judged), then steps
 *   the offered rate up from `--rate-start` (×`--rate-factor`, or +`--rate-step`), each step
 *   `--step-duration` seconds, then waits until the step's orders are terminal and reads
 *   their timelines. A step holds when every order ended CONFIRMED (or REJECTED for stock) within the
 *   drain, PENDING→CONFIRMED p99 is within `--p99-limit-ms`, at least 90 % of the offered rate was
 *   placed, and no placement was refused (OVERLOADED, RATE_LIMITED) or failed. The first step that
 *   does not hold (or `--rate-max`) ends the search; the capacity is the highest rate that held.
 * - `--overload` runs at twice that capacity (or twice `--rate`) for `--duration` seconds: orders
 *   accepted, refused OVERLOADED (not replayed), cancelled by cause (the deadline, the payment,
 *   other), and whether every accepted order was CONFIRMED.
 * Both end with the same conservation check over every order of the run, and the event hops.
 *
 * `--replicas N`: the stack runs N of each service (`npm start -- --replicas N`); `--workers`: each
 * as an api process and a worker (`npm start -- --workers`). The per-process table then lists every
 * process, found on its port (platform/src/config.ts serviceInstances).
 *
 * Exits 1 when the stack does not answer, no order could be placed, or the check fails.
 * Ctrl-C ends the current phase early (placing, then the drain; no later step or overload follows)
 * and reports what was measured; Ctrl-C during the final reads quits at once.
 */
import { type ChildProcess, execFile, fork } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { rateLimitSettings } from '../gateway/src/rate-limits.ts';
import { signToken } from '../platform/src/auth.ts';
import { SERVICE_NAMES, type Config, type ServiceName, loadConfig, serviceDatabaseUrl, serviceInstances } from '../platform/src/config.ts';
import { sleep } from '../platform/src/resilience.ts';
import { DEADLINE_REASON } from '../subgraphs/order/src/saga.ts';
import {
  NotReady,
  UsageError,
  type Distribution,
  distribution,
  fixed,
  forEachFlag,
  getJson,
  mib,
  positiveNumber,
  procStats,
  table,
  urlOption,
  watchdog,
  writeResults,
} from './lib.ts';
import {
  BUSY_CODES,
  LATE_START_MS,
  OPEN_LOOP_MAX_IN_FLIGHT,
  PLACE_ORDER,
  placeOrderInput,
  readPlaceOrder,
  seedSku,
  type FailedPlacement,
  type PlacedOrder,
  type SagaRunRequest,
  type SagaRunResult,
  type SagaWorkerReply,
  type SagaWorkerRequest,
} from './saga-protocol.ts';

/** The seed catalogue's size (scripts/seed.ts SEED_PRODUCT_COUNT): SKU-0001..SKU-1000. */
const SEED_SKUS = 1_000;
/** Aliased fields per GraphQL read request (stock levels, orders): the gateway's default GRAPHQL_MAX_ALIASES. */
const BATCH = 15;
/** Read requests in flight at once. */
const READ_CONCURRENCY = 4;
/** Statuses an order of this bench does not leave by itself. */
const TERMINAL = new Set(['CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED']);
/** Statuses whose units have left the warehouse. */
const SOLD = new Set(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
const STATUSES = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED'] as const;
/** A search step holds only while this share of the offered rate is placed. */
const ACHIEVED_FRACTION = 0.9;
/** Open loop: each customer places at most this share of the gateway's per-subject rate limit. */
const CUSTOMER_RATE_LIMIT_SHARE = 0.5;
/** Between search steps, once a step's orders are terminal: the saga's last events (shipping) settle. */
const STEP_PAUSE_MS = 2_000;

/** The platform's performance targets: the floor must hold, the goal is where we want to be. */
const TARGETS = {
  ordersPerMinute: { floor: 1_000, goal: 10_000 },
  placeOrderP99Ms: { floor: 200, goal: 100 },
  stockUpdateP50Ms: { floor: 1_000 },
  pendingToConfirmedP99Ms: { goal: 1_000 },
} as const;

export const USAGE = `usage: npm run bench -- saga [--customers 32] [--duration 30] [--skus 1000] [--quantity 1]
                             [--method tok_visa] [--drain-timeout 120] [--gateway-url URL] [--replicas 1]
       npm run bench -- saga --search [--rate-start 10] [--rate-factor 1.5 | --rate-step N] [--rate-max 2000]
                             [--step-duration 15] [--warmup 5] [--p99-limit-ms 1000] [--overload [--duration 30]] [...]
       npm run bench -- saga --overload --rate N [--duration 30] [...]

  --customers      closed loop: concurrent customers, each with its own token bench-<n> (default 32);
                   open loop: the fewest customers the placements are spread over (more are used when
                   the rate would pass half of one customer's gateway rate limit)
  --duration       seconds of placing orders: the closed loop's, or the overload's (default 30)
  --skus           order random skus from SKU-0001..SKU-<skus> (default 1000, at most ${SEED_SKUS})
  --quantity       units per order, one line per order (default 1)
  --method         payment method token: tok_visa authorises, tok_decline is declined,
                   tok_timeout never answers (default tok_visa; --search and --overload need tok_visa)
  --drain-timeout  seconds to wait after placing (after each step) for every order to end and the
                   stock to settle (default 120)
  --gateway-url    the running gateway (default http://127.0.0.1:$GATEWAY_PORT/graphql)
  --replicas       how many of each service the stack runs (npm start -- --replicas N); the
                   per-process table lists every replica (default 1)
  --workers        the stack runs each replica as an api process and a worker
                   (npm start -- --workers); the per-process table lists both

  --search         capacity search: open-loop steps at a rising offered rate (orders/s) until one
                   does not hold; reports each step and the highest rate that held
  --rate-start     the first step's offered rate, orders/s (default 10)
  --rate-factor    each next step offers this many times the last (default 1.5)
  --rate-step      or: each next step offers this many orders/s more (instead of --rate-factor)
  --rate-max       the highest rate to offer, orders/s (default 2000)
  --step-duration  seconds of placing per step (default 15)
  --warmup         seconds at --rate-start before the first step, not judged: a freshly started
                   stack is slow at first (default 5; 0: none)
  --p99-limit-ms   a step holds while PENDING→CONFIRMED p99 is at most this (default 1000); it also
                   needs ${ACHIEVED_FRACTION * 100} % of the offered rate placed (orders returned from the first
                   start to the last answer), no OVERLOADED or RATE_LIMITED refusal, no failed
                   placement and every order CONFIRMED (or REJECTED for stock) within the drain
  --overload       open loop at twice the capacity (the search's, or --rate) for --duration seconds:
                   orders accepted, refused OVERLOADED, cancelled by cause, all accepted confirmed?
  --rate           the capacity, orders/s, for --overload without --search

Needs the whole stack running (npm start): the five subgraphs, Kafka, the seed catalogue and the
gateway. Reads the service databases (DATABASE_URL, DB_PREFIX) for the backlog when it can.
Ctrl-C ends the current phase early (placing, then the drain; no later step or overload follows)
and reports what was measured.`;

interface SearchOptions {
  readonly rateStart: number;
  readonly rateFactor: number;
  /** Added to the rate each step instead of multiplying by rateFactor. */
  readonly rateStep: number | null;
  readonly rateMax: number;
  readonly stepDurationS: number;
  readonly p99LimitMs: number;
  /** Seconds at rateStart before the first step, not judged (0: none). */
  readonly warmupS: number;
}

interface Options {
  customers: number;
  durationS: number;
  skus: number;
  quantity: number;
  method: string;
  drainTimeoutS: number;
  gatewayUrl: string;
  /** What the operator says the stack runs: a label only. */
  replicas: number;
  /** The stack runs api and worker processes apart (`npm start -- --workers`). */
  workers: boolean;
  /** --search: the capacity search; null for a closed-loop or overload-only run. */
  search: SearchOptions | null;
  /** --overload: twice the capacity, which is `rate` (--rate) or, when null, the search's. */
  overload: { readonly rate: number | null } | null;
}

/** Flags that only --search reads. */
const SEARCH_FLAGS = ['--rate-start', '--rate-factor', '--rate-step', '--rate-max', '--step-duration', '--p99-limit-ms', '--warmup'];
/** The largest offered rate, orders/s. */
const MAX_RATE = 100_000;

function parseOptions(args: readonly string[], defaultGatewayUrl: string): Options {
  const options: Options = {
    customers: 32,
    durationS: 30,
    skus: SEED_SKUS,
    quantity: 1,
    method: 'tok_visa',
    drainTimeoutS: 120,
    gatewayUrl: defaultGatewayUrl,
    replicas: 1,
    workers: false,
    search: null,
    overload: null,
  };
  const search = { rateStart: 10, rateFactor: 1.5, rateStep: null as number | null, rateMax: 2_000, stepDurationS: 15, p99LimitMs: 1_000, warmupS: 5 };
  let searching = false,
    overloading = false;
  let rate: number | null = null;
  const given = new Set<string>();
  for (const arg of args) {
    const switchFlag = /^(--search|--overload)=/.exec(arg);
    if (switchFlag) throw new UsageError(`${switchFlag[1]} takes no value, got "${arg}"`);
  }
  forEachFlag(args, (name, value) => {
    given.add(name);
    switch (name) {
      case '--customers':
        options.customers = positiveNumber(name, value(), { integer: true, max: 1024 });
        break;
      case '--duration':
        options.durationS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--skus':
        options.skus = positiveNumber(name, value(), { integer: true, max: SEED_SKUS });
        break;
      case '--quantity':
        options.quantity = positiveNumber(name, value(), { integer: true, max: 1000 });
        break;
      case '--drain-timeout':
        options.drainTimeoutS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--replicas':
        options.replicas = positiveNumber(name, value(), { integer: true, max: 256 });
        break;
      case '--workers':
        options.workers = true;
        break;
      case '--method': {
        const v = value();
        if (!/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new UsageError(`--method must be a payment method token such as tok_visa, got "${v}"`);
        options.method = v;
        break;
      }
      case '--gateway-url': {
        options.gatewayUrl = urlOption(value(), '--gateway-url');
        break;
      }
      case '--search':
        searching = true;
        break;
      case '--overload':
        overloading = true;
        break;
      case '--rate':
        rate = positiveNumber(name, value(), { max: MAX_RATE / 2 });
        break;
      case '--rate-start':
        search.rateStart = positiveNumber(name, value(), { max: MAX_RATE });
        break;
      case '--rate-step':
        search.rateStep = positiveNumber(name, value(), { max: MAX_RATE });
        break;
      case '--rate-max':
        search.rateMax = positiveNumber(name, value(), { max: MAX_RATE });
        break;
      case '--step-duration':
        search.stepDurationS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--p99-limit-ms':
        search.p99LimitMs = positiveNumber(name, value(), { max: 3_600_000 });
        break;
      case '--warmup': {
        const raw = value();
        search.warmupS = raw.trim() === '0' ? 0 : positiveNumber(name, raw, { max: 3600 });
        break;
      }
      case '--rate-factor': {
        const raw = value();
        search.rateFactor = positiveNumber(name, raw, { max: 10 });
        if (search.rateFactor <= 1) throw new UsageError(`--rate-factor must be above 1 (each step offers more than the last), got "${raw}"`);
        break;
      }
      default:
        throw new UsageError(`unknown option "${name}"`);
    }
  });
  const searchOnly = SEARCH_FLAGS.filter((f) => given.has(f));
  if (!searching && searchOnly.length) throw new UsageError(`${searchOnly.join(', ')} ${searchOnly.length > 1 ? 'belong' : 'belongs'} to --search`);
  if (given.has('--rate-factor') && given.has('--rate-step')) throw new UsageError('give --rate-factor (×) or --rate-step (+), not both');
  if (search.rateStart > search.rateMax) throw new UsageError(`--rate-start ${search.rateStart} is above --rate-max ${search.rateMax}`);
  if (rate !== null && !overloading) throw new UsageError('--rate is the capacity --overload runs at twice of: give --overload too');
  if (rate !== null && searching) throw new UsageError('--rate and --search both set the capacity for --overload: give one of them');
  if (overloading && !searching && rate === null) throw new UsageError('--overload needs a capacity: --search finds one, or give it with --rate N (orders/s)');
  if ((searching || overloading) && options.method !== 'tok_visa') {
    throw new UsageError(`--search and --overload measure orders up to CONFIRMED, which needs --method tok_visa, got "${options.method}"`);
  }
  if (searching && !overloading && given.has('--duration'))
    throw new UsageError("--duration is the closed loop's or the overload's placing time: a search step lasts --step-duration");
  if (searching) options.search = search;
  if (overloading) options.overload = { rate };
  return options;
}

// ---------------------------------------------------------------------------------------------
// GraphQL reads through the gateway

interface GraphQLAnswer {
  data?: Record<string, any> | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string } }[];
}

/** Rate-limited reads wait out Retry-After this many times before the bench gives up. */
const RATE_LIMITED_RETRIES = 5;

async function graphql(url: string, query: string, token?: string, timeoutMs = 30_000): Promise<GraphQLAnswer> {
  let response: Response;
  for (let attempt = 0; ; attempt++) {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // The bench's reads are one client among many to the gateway's rate limits: they wait as any client should.
    if (response.status !== 429 || attempt === RATE_LIMITED_RETRIES) break;
    await response.arrayBuffer();
    const seconds = Number(response.headers.get('retry-after')) || 1;
    await sleep(seconds * 1000);
  }
  const text = await response.text();
  try {
    return JSON.parse(text) as GraphQLAnswer;
  } catch {
    throw new Error(`HTTP ${response.status} from ${url}, not JSON: ${text.slice(0, 200)}`);
  }
}

/** Runs `work` over `items` in batches of BATCH, READ_CONCURRENCY batches at a time. */
async function inBatches<T, R>(items: readonly T[], work: (batch: readonly T[]) => Promise<R[]>): Promise<R[]> {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) batches.push(items.slice(i, i + BATCH));
  const results: R[][] = new Array(batches.length);
  let next = 0;
  const lane = async () => {
    while (next < batches.length) {
      const index = next++;
      results[index] = await work(batches[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, batches.length) }, lane));
  return results.flat();
}

interface Stock {
  readonly onHand: number;
  readonly reserved: number;
  readonly available: number;
}

/** The stock of `skus`, BATCH aliased `stockLevel` fields per request. */
async function readStock(url: string, skus: readonly string[]): Promise<Map<string, Stock>> {
  const rows = await inBatches(skus, async (batch) => {
    const query = `query BenchStock { ${batch.map((sku, i) => `s${i}: stockLevel(sku: ${JSON.stringify(sku)}) { onHand reserved available }`).join(' ')} }`;
    const answer = await graphql(url, query);
    if (answer.errors?.length) throw new Error(`stockLevel failed: ${JSON.stringify(answer.errors).slice(0, 300)}`);
    return batch.map((sku, i) => {
      const s = answer.data?.[`s${i}`];
      if (!s) throw new Error(`stockLevel(${sku}) returned nothing`);
      return [sku, { onHand: s.onHand, reserved: s.reserved, available: s.available }] as const;
    });
  });
  return new Map(rows);
}

interface OrderView {
  readonly status: string;
  readonly timeline: readonly { readonly status: string; readonly at: string; readonly eventType: string | null; readonly reason: string | null }[];
}

/** Orders by id (an admin token reads every customer's), BATCH aliased `order` fields per request. */
async function readOrders(url: string, adminToken: string, ids: readonly string[], withTimeline: boolean): Promise<Map<string, OrderView | Error>> {
  const selection = withTimeline ? '{ status timeline { status at eventType reason } }' : '{ status }';
  const rows = await inBatches(ids, async (batch): Promise<(readonly [string, OrderView | Error])[]> => {
    const query = `query BenchOrders { ${batch.map((id, i) => `o${i}: order(id: ${JSON.stringify(id)}) ${selection}`).join(' ')} }`;
    let answer: GraphQLAnswer;
    try {
      answer = await graphql(url, query, adminToken, 60_000);
    } catch (error) {
      return batch.map((id) => [id, error as Error] as const);
    }
    const errorOf = new Map<string, string>();
    for (const e of answer.errors ?? []) if (typeof e.path?.[0] === 'string') errorOf.set(e.path[0], `${e.extensions?.code ?? 'ERROR'}: ${e.message}`);
    const general = answer.errors?.find((e) => !e.path)?.message;
    return batch.map((id, i) => {
      const order = answer.data?.[`o${i}`];
      if (order) return [id, order as OrderView] as const;
      return [id, new Error(errorOf.get(`o${i}`) ?? general ?? 'order(id) returned null')] as const;
    });
  });
  return new Map(rows);
}

// ---------------------------------------------------------------------------------------------
// The service databases (optional: the bench works through the API alone when they are unreachable)

class Databases {
  readonly #pools: Map<ServiceName, pg.Pool>;

  private constructor(pools: Map<ServiceName, pg.Pool>) {
    this.#pools = pools;
  }

  /** Connects to the five service databases; null (with the reason) when the order database does not answer. */
  static async open(config: Config): Promise<{ db: Databases | null; problem: string | null }> {
    const pools = new Map(
      SERVICE_NAMES.map((name) => [name, new pg.Pool({ connectionString: serviceDatabaseUrl(config, name), max: 2, connectionTimeoutMillis: 3_000 })]),
    );
    for (const pool of pools.values()) pool.on('error', () => {});
    try {
      await pools.get('order')!.query('select 1 from orders limit 1');
      return { db: new Databases(pools), problem: null };
    } catch (error) {
      await Promise.all([...pools.values()].map((p) => p.end().catch(() => {})));
      return { db: null, problem: (error as Error).message };
    }
  }

  /** This run's orders by status, from the order database (including any whose response was lost). */
  async runStatuses(keyPrefix: string): Promise<Record<string, number>> {
    const { rows } = await this.#pools
      .get('order')!
      .query<{ status: string; n: number }>(
        `select status, count(*)::integer as n from orders where customer_id like 'bench-%' and idempotency_key like $1 group by status`,
        [`${keyPrefix}-%`],
      );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** Unpublished outbox rows per service; null for a service whose outbox cannot be read. */
  async outboxBacklog(): Promise<Record<string, number | null>> {
    const entries = await Promise.all(
      SERVICE_NAMES.map(async (name) => {
        try {
          const { rows } = await this.#pools.get(name)!.query<{ n: number }>('select count(*)::integer as n from outbox where published_at is null');
          return [name, rows[0].n] as const;
        } catch {
          return [name, null] as const;
        }
      }),
    );
    return Object.fromEntries(entries);
  }

  /** Orders placed by anyone else since `since` on these skus: they move the same stock. */
  async otherOrders(keyPrefix: string, since: Date, skus: readonly string[]): Promise<{ orders: number; units: number }> {
    const { rows } = await this.#pools.get('order')!.query<{ orders: number; units: number }>(
      `select count(distinct o.id)::integer as orders, coalesce(sum(i.quantity), 0)::integer as units
         from orders o join order_item i on i.order_id = o.id
        where o.created_at >= $1 and i.sku = any($3) and not (o.customer_id like 'bench-%' and o.idempotency_key like $2)`,
      [since, `${keyPrefix}-%`, skus],
    );
    return rows[0];
  }

  /**
   * Every event hop since `since`: each consumer's inbox rows joined (by event id) to the producer's
   * outbox row, so each hop splits into the relay's part (outbox commit → published) and the
   * Kafka and consumer part (published → the consumer's inbox transaction). Per consumer and event type.
   */
  async hops(since: Date): Promise<HopFigures[]> {
    const outbox = new Map<string, { createdAt: number; publishedAt: number | null; producer: string }>();
    const inbox: { consumer: string; eventId: string; eventType: string; processedAt: number }[] = [];
    await Promise.all(
      SERVICE_NAMES.map(async (name) => {
        const pool = this.#pools.get(name)!;
        const [out, inb] = await Promise.all([
          pool
            .query<{ id: string; created_at: Date; published_at: Date | null }>('select id, created_at, published_at from outbox where created_at >= $1', [
              since,
            ])
            .catch(() => ({ rows: [] })),
          pool
            .query<{ consumer: string; event_id: string; event_type: string; processed_at: Date }>(
              'select consumer, event_id, event_type, processed_at from inbox where processed_at >= $1',
              [since],
            )
            .catch(() => ({ rows: [] })),
        ]);
        for (const r of out.rows) outbox.set(r.id, { createdAt: r.created_at.getTime(), publishedAt: r.published_at?.getTime() ?? null, producer: name });
        for (const r of inb.rows) inbox.push({ consumer: r.consumer, eventId: r.event_id, eventType: r.event_type, processedAt: r.processed_at.getTime() });
      }),
    );
    const groups = new Map<string, { producer: string; relay: number[]; delivery: number[]; total: number[]; first: number; last: number }>();
    for (const row of inbox) {
      const source = outbox.get(row.eventId);
      if (!source || source.publishedAt === null) continue;
      const key = `${row.consumer}\u0000${row.eventType}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { producer: source.producer, relay: [], delivery: [], total: [], first: Infinity, last: -Infinity }));
      g.relay.push(source.publishedAt - source.createdAt);
      g.delivery.push(row.processedAt - source.publishedAt);
      g.total.push(row.processedAt - source.createdAt);
      g.first = Math.min(g.first, row.processedAt);
      g.last = Math.max(g.last, row.processedAt);
    }
    return [...groups]
      .map(([key, g]) => {
        const [consumer, eventType] = key.split('\u0000');
        return {
          consumer,
          eventType,
          producer: g.producer,
          events: g.total.length,
          perSecond: g.last > g.first ? (g.total.length - 1) / ((g.last - g.first) / 1000) : Number.NaN,
          relayMs: distribution(g.relay),
          deliveryMs: distribution(g.delivery),
          totalMs: distribution(g.total),
        };
      })
      .sort((a, b) => a.consumer.localeCompare(b.consumer) || b.events - a.events);
  }

  /** The inventory database's own figures for `skus` (to tell a stale read from a wrong figure). */
  async inventoryStock(skus: readonly string[]): Promise<Map<string, { onHand: number; reserved: number }>> {
    const { rows } = await this.#pools
      .get('inventory')!
      .query<{ sku: string; on_hand: number; reserved: number }>('select sku, on_hand, reserved from stock where sku = any($1)', [skus]);
    return new Map(rows.map((r) => [r.sku, { onHand: Number(r.on_hand), reserved: Number(r.reserved) }]));
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.end().catch(() => {})));
  }
}

/** One kind of event hop: from the producer's outbox to one consumer's inbox. */
interface HopFigures {
  readonly consumer: string;
  readonly eventType: string;
  readonly producer: string;
  readonly events: number;
  /** Events handled per second between the consumer's first and last one. */
  readonly perSecond: number;
  /** Outbox commit → published to Kafka. */
  readonly relayMs: Distribution;
  /** Published → the consumer's inbox transaction (Kafka, consumer lag, the handler's queue). */
  readonly deliveryMs: Distribution;
  readonly totalMs: Distribution;
}

// ---------------------------------------------------------------------------------------------
// Resident memory of the gateway and the five services

interface ProcessMemory {
  readonly pid: number | null;
  readonly rssBytes: number | null;
  readonly peakRssBytes: number | null;
  /** User + system CPU time since the process started, in seconds (from /proc/<pid>/stat). */
  readonly cpuSeconds: number | null;
  readonly note?: string;
}

const execFileAsync = promisify(execFile);

/** The pid listening on `port`, from `ss -ltnp` (null when ss cannot tell, e.g. another user's process). */
async function pidOnPort(port: number): Promise<number | null> {
  try {
    const { stdout } = await execFileAsync('ss', ['-ltnpH', `sport = :${port}`], { timeout: 3_000 });
    const match = /pid=(\d+)/.exec(stdout);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Pids whose command line runs `subgraphs/<name>/src/main.ts`. */
async function pidsByCommandLine(name: string): Promise<number[]> {
  const needle = `subgraphs/${name}/src/main.ts`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.endsWith(needle))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * The gateway and every process of every service, found on its port and named as npm start names
 * them (`order`, `order-2`, `order-worker`, ...: platform/src/config.ts serviceInstances).
 */
async function processMemory(config: Config, gatewayOrigin: string, stack: Pick<Options, 'replicas' | 'workers'>): Promise<Record<string, ProcessMemory>> {
  const result: Record<string, ProcessMemory> = {};
  try {
    const { body } = await getJson(`${gatewayOrigin}/healthz`);
    result.gateway = {
      pid: body.pid ?? null,
      rssBytes: body.rssBytes ?? null,
      peakRssBytes: body.maxRssBytes ?? null,
      cpuSeconds: typeof body.cpuMicros === 'number' ? body.cpuMicros / 1e6 : null,
    };
  } catch (error) {
    result.gateway = { pid: null, rssBytes: null, peakRssBytes: null, cpuSeconds: null, note: `/healthz: ${(error as Error).message}` };
  }
  const instances = serviceInstances(stack, config.servicePorts);
  for (const { name, service, port } of instances) {
    let pid = await pidOnPort(port);
    let note: string | undefined;
    // A lone service found by its command line when the port lookup is not allowed here.
    if (pid === null && instances.filter((i) => i.service === service).length === 1) {
      const pids = await pidsByCommandLine(service);
      pid = pids[0] ?? null;
      if (pids.length > 1) note = `several processes run subgraphs/${service}/src/main.ts (${pids.join(', ')}); took the first`;
    }
    if (pid === null) note = `no process found on port ${port}`;
    result[name] = {
      pid,
      ...(pid === null ? { rssBytes: null, peakRssBytes: null, cpuSeconds: null } : await procStats(pid)),
      ...(note ? { note } : {}),
    };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// The customer process

type OnProgress = (progress: Extract<SagaWorkerReply, { type: 'progress' }>) => void;

class Customers {
  readonly child: ChildProcess;
  #onProgress: OnProgress = () => {};

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (m: SagaWorkerReply) => {
      if (m.type === 'progress') this.#onProgress(m);
    });
  }

  static async start(): Promise<Customers> {
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), 'saga-worker.ts');
    const child = fork(entry, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the customer process did not start within 10 s')), 10_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the customer process exited during start-up (${code})`));
      });
    });
    return new Customers(child);
  }

  run(request: SagaRunRequest, onProgress: OnProgress): Promise<SagaRunResult> {
    this.#onProgress = onProgress;
    return new Promise((resolve, reject) => {
      const onMessage = (m: SagaWorkerReply) => {
        if (m.type === 'result') {
          cleanup();
          resolve(m.result);
        }
        if (m.type === 'failed') {
          cleanup();
          reject(new Error(`customer process: ${m.error}`));
        }
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        reject(new Error(`the customer process exited (${signal ?? code})`));
      };
      const cleanup = () => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ type: 'run', run: request } satisfies SagaWorkerRequest);
    });
  }

  /** Ends placing: no new placement starts, those in flight finish, then the run reports. */
  stop(): void {
    if (this.child.connected) this.child.send({ type: 'stop' } satisfies SagaWorkerRequest);
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies SagaWorkerRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Figures

/** NaN becomes null in the JSON file (JSON has no NaN). */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
}

const count = (tallies: Record<string, number>, key: string) => {
  tallies[key] = (tallies[key] ?? 0) + 1;
};
const sum = (tallies: Record<string, number>) => Object.values(tallies).reduce((a, b) => a + b, 0);
/** Orders of `statuses` (counts by status) not yet terminal. */
const notTerminalCount = (statuses: Record<string, number>) =>
  Object.entries(statuses)
    .filter(([s]) => !TERMINAL.has(s))
    .reduce((n, [, c]) => n + c, 0);
const seconds = (ms: number) => `${fixed(ms / 1000)} s`;

/** When an order first reached `status` (or first recorded `eventType`), epoch ms. */
function firstAt(order: OrderView, match: (t: OrderView['timeline'][number]) => boolean): number | null {
  const t = order.timeline.find(match);
  return t ? Date.parse(t.at) : null;
}

interface Mismatch {
  readonly sku: string;
  readonly problem: string;
  readonly initial: Stock;
  readonly final: Stock;
  readonly sold: number;
  readonly database?: { onHand: number; reserved: number } | null;
}

/** The conservation check of every sku: what is wrong with each that does not add up. */
function checkConservation(skus: readonly string[], initial: Map<string, Stock>, final: Map<string, Stock>, sold: Map<string, number>): Mismatch[] {
  const mismatches: Mismatch[] = [];
  for (const sku of skus) {
    const a = initial.get(sku)!,
      b = final.get(sku)!,
      s = sold.get(sku) ?? 0;
    const problems: string[] = [];
    const accounted = b.available + b.reserved + s;
    if (accounted !== a.onHand) problems.push(`initial onHand ${a.onHand} ≠ available ${b.available} + reserved ${b.reserved} + sold ${s} = ${accounted}`);
    if (b.reserved !== a.reserved)
      problems.push(
        `reserved ${a.reserved} → ${b.reserved}: ${b.reserved > a.reserved ? 'a reservation was left behind' : 'more was released or committed than the run reserved'}`,
      );
    if (b.available !== Math.max(0, b.onHand - b.reserved)) problems.push(`available ${b.available} ≠ onHand ${b.onHand} − reserved ${b.reserved}`);
    if (problems.length) mismatches.push({ sku, problem: problems.join('; '), initial: a, final: b, sold: s });
  }
  return mismatches;
}

/** Why an order was cancelled, from the reason of its transition into CANCELLED. */
type CancelCause = 'deadline' | 'payment' | 'other';

function cancelCause(reason: string | null | undefined): CancelCause {
  if (reason === DEADLINE_REASON) return 'deadline';
  // The saga's "payment declined: …" and "payment failed: …" (subgraphs/order/src/saga.ts).
  if (reason?.startsWith('payment ')) return 'payment';
  return 'other';
}

/** An order of the run: placed, or returned by replaying a failed placement's idempotency key. */
type RunOrder = PlacedOrder & { readonly replayed?: boolean };

/** Outcomes, units sold per sku and step durations of the run's orders, from their timelines. */
function tally(orders: readonly RunOrder[], views: Map<string, OrderView | Error>) {
  const outcomes: Record<string, number> = {};
  const sold = new Map<string, number>();
  const reservedMs: number[] = [],
    confirmedMs: number[] = [],
    responseToConfirmedMs: number[] = [],
    committedMs: number[] = [];
  const unreadable: string[] = [];
  const notTerminal: { id: string; status: string }[] = [];
  const cancelReasons: Record<string, number> = {};
  const cancelled: Record<CancelCause, number> = { deadline: 0, payment: 0, other: 0 };
  for (const order of orders) {
    const view = views.get(order.id)!;
    if (view instanceof Error) {
      count(outcomes, 'UNREADABLE');
      if (unreadable.length < 5) unreadable.push(`${order.id}: ${view.message}`);
      continue;
    }
    count(outcomes, view.status);
    if (!TERMINAL.has(view.status)) notTerminal.push({ id: order.id, status: view.status });
    if (SOLD.has(view.status)) sold.set(order.sku, (sold.get(order.sku) ?? 0) + order.quantity);
    if (view.status === 'CANCELLED' || view.status === 'REJECTED') {
      // The transition into the final status says why; later entries are compensations (refund, release).
      const cause = view.timeline.find((t) => t.status === view.status);
      count(cancelReasons, `${view.status}: ${cause?.reason ?? cause?.eventType ?? '?'}`);
      if (view.status === 'CANCELLED') cancelled[cancelCause(cause?.reason)]++;
    }
    const pendingAt = firstAt(view, (t) => t.status === 'PENDING');
    const awaitingAt = firstAt(view, (t) => t.status === 'AWAITING_PAYMENT');
    const confirmedAt = firstAt(view, (t) => t.status === 'CONFIRMED');
    const committedAt = firstAt(view, (t) => t.eventType === 'StockCommitted');
    if (pendingAt !== null && awaitingAt !== null) reservedMs.push(awaitingAt - pendingAt);
    if (pendingAt !== null && confirmedAt !== null) confirmedMs.push(confirmedAt - pendingAt);
    if (pendingAt !== null && committedAt !== null) committedMs.push(committedAt - pendingAt);
    if (confirmedAt !== null && !order.replayed) responseToConfirmedMs.push(confirmedAt - order.respondedAt);
  }
  return { outcomes, sold, reservedMs, confirmedMs, responseToConfirmedMs, committedMs, unreadable, notTerminal, cancelReasons, cancelled };
}

/** Notes on the figures of every mode. */
const COMMON_NOTES = [
  "PENDING→X times are the order timeline's own timestamps (transaction start times in the order database), so they include Kafka and every consumer hop but not the client's HTTP time",
  '"stock update" is PENDING→AWAITING_PAYMENT: inventory\'s reservation committed before order saw StockReserved, so this is an upper bound of when stockLevel shows it',
  "hops (when the databases are readable): relay = outbox commit → published to Kafka; delivery = published → the consumer's inbox transaction (Kafka, consumer lag and the handler's queue); handled/s is between the consumer's first and last event of the run",
];

/** The `n` most frequent reasons, most frequent first. */
function topReasons(reasons: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(reasons)
      .sort((a, b) => b[1] - a[1])
      .slice(0, n),
  );
}

/** "CONFIRMED 120, CANCELLED 2" in the saga's order of statuses. */
function outcomeList(outcomes: Record<string, number>): string {
  return (
    [...STATUSES]
      .filter((s) => outcomes[s])
      .map((s) => `${s} ${outcomes[s]}`)
      .concat(outcomes.UNREADABLE ? [`UNREADABLE ${outcomes.UNREADABLE}`] : [])
      .join(', ') || 'none'
  );
}

// ---------------------------------------------------------------------------------------------
// What the closed and the open loop share

/** Ctrl-C's state: the phase it ends, and whether any more placing may start. */
interface Control {
  phase: 'placing' | 'drain' | 'report';
  /** Set by Ctrl-C: placing ends now, and no later step or overload starts. */
  stopPlacing: boolean;
  /** Ctrl-C in a drain: it and every later one end at once. */
  readonly drainAbort: AbortController;
}

/** Customer tokens bench-1..bench-<n>, signed as more are needed. */
class CustomerTokens {
  readonly #secret: string;
  readonly #tokens: string[] = [];

  constructor(secret: string) {
    this.#secret = secret;
  }

  async first(n: number): Promise<string[]> {
    while (this.#tokens.length < n) this.#tokens.push(await signToken(this.#secret, { sub: `bench-${this.#tokens.length + 1}`, roles: ['customer'] }, '2h'));
    return this.#tokens.slice(0, n);
  }
}

/** What a run works with. */
interface Bench {
  readonly config: Config;
  readonly options: Options;
  readonly origin: string;
  readonly skus: readonly string[];
  /** Every idempotency key of the run starts with `<keyPrefix>-`. */
  readonly keyPrefix: string;
  readonly adminToken: string;
  readonly tokens: CustomerTokens;
  /** Open loop: orders/s one customer places at most (a share of the gateway's per-subject rate limit). */
  readonly customerRate: number;
  readonly customers: Customers;
  readonly control: Control;
  /** Null when unreachable, or once they turn out to hold none of the run's orders. */
  db: Databases | null;
  readonly initialStock: Map<string, Stock>;
  readonly startedAt: Date;
  readonly loadAtStart: number[];
}

/** The stack writes to other databases than the ones this bench reads (DB_PREFIX differs): the run goes on through the API alone. */
async function dropForeignDatabases(bench: Bench): Promise<void> {
  console.log(
    `note: the order database ${serviceDatabaseUrl(bench.config, 'order').replace(/\/\/[^@/]*@/, '//')} holds none of this run's orders ` +
      '(is the stack running with another DB_PREFIX?); backlog and drain come from the API alone, and there is no outbox figure',
  );
  await bench.db?.close();
  bench.db = null;
}

/**
 * A placeOrder that failed may still have created its order (a lost response): replaying its
 * idempotency key with the same input returns that order, or places it now. Either way the
 * run then knows every order it caused, which the stock check needs.
 * A refusal for being busy (OVERLOADED, RATE_LIMITED) stored nothing, by contract: not replayed.
 */
async function replayFailed(bench: Bench, run: SagaRunResult, tokens: readonly string[]) {
  const { gatewayUrl, method } = bench.options;
  const orders: RunOrder[] = [...run.placed];
  const refused = run.failed.filter((f) => BUSY_CODES.has(f.code));
  const replay = run.failed.filter((f) => !BUSY_CODES.has(f.code)).slice(0, 2_000);
  const refusedByCode: Record<string, number> = {};
  for (const f of refused) count(refusedByCode, f.code);
  if (refused.length) {
    console.log(
      `refused as busy: ${refused.length} placements (${Object.entries(refusedByCode)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ')}); nothing was stored, so they are not replayed`,
    );
  }
  const stillFailed: FailedPlacement[] = [];
  if (replay.length) {
    let next = 0;
    const lane = async () => {
      while (next < replay.length) {
        const f = replay[next++];
        try {
          const response = await fetch(gatewayUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[f.customer - 1]}` },
            body: JSON.stringify({
              operationName: 'PlaceOrder',
              query: PLACE_ORDER,
              variables: { input: placeOrderInput(f.customer, f.idempotencyKey, f.sku, f.quantity, method) },
            }),
            signal: AbortSignal.timeout(30_000),
          });
          const outcome = readPlaceOrder(response.status, await response.text());
          if ('order' in outcome) orders.push({ ...f, id: outcome.order.id, status: outcome.order.status, respondedAt: Date.now(), replayed: true });
          else stillFailed.push(f);
        } catch {
          stillFailed.push(f);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(8, replay.length) }, lane));
    console.log(`replayed ${replay.length} failed placements by idempotency key: ${replay.length - stillFailed.length} returned an order`);
  }
  return { orders, refused, refusedByCode, replayed: replay.length, stillFailed };
}

/**
 * Waits until every order of the run under `keyPrefix` is terminal: counted in the order database
 * when it is readable (which includes any whose response was lost), else `orders` read through the
 * API. Ends at `deadline` or Ctrl-C; times count from `from`.
 */
async function waitTerminal(
  bench: Bench,
  keyPrefix: string,
  orders: readonly RunOrder[],
  from: number,
  deadline: number,
): Promise<{ terminalMs: number | null; dbOrderCount: number | null }> {
  let dbOrderCount: number | null = null;
  let pending = new Set(orders.map((o) => o.id));
  let lastReport = 0;
  while (!bench.control.drainAbort.signal.aborted) {
    let open: number;
    if (bench.db) {
      const statuses = await bench.db.runStatuses(keyPrefix);
      dbOrderCount = sum(statuses);
      open = notTerminalCount(statuses);
    } else {
      const views = await readOrders(bench.options.gatewayUrl, bench.adminToken, [...pending], false);
      pending = new Set([...views].filter(([, v]) => v instanceof Error || !TERMINAL.has(v.status)).map(([id]) => id));
      open = pending.size;
    }
    if (open === 0) return { terminalMs: performance.now() - from, dbOrderCount };
    const now = performance.now();
    if (now >= deadline) break;
    if (now - lastReport >= 5_000) {
      lastReport = now;
      console.log(`  ${fixed((now - from) / 1000, 0).padStart(4)} s  ${open} orders not terminal`);
    }
    await sleep(bench.db ? 500 : 2_000);
  }
  return { terminalMs: null, dbOrderCount };
}

/**
 * Reads the stock and checks every sku; while some sku does not add up and every order is
 * terminal, reads it again each second (after the orders, inventory still commits and releases)
 * until `deadline` or Ctrl-C. `settledMs` counts from `from`.
 */
async function checkStock(
  bench: Bench,
  sold: Map<string, number>,
  ordersTerminal: boolean,
  from: number,
  deadline: number,
): Promise<{ mismatches: Mismatch[]; settledMs: number | null }> {
  const check = async () => checkConservation(bench.skus, bench.initialStock, await readStock(bench.options.gatewayUrl, bench.skus), sold);
  let mismatches = await check();
  let settledMs = mismatches.length === 0 ? performance.now() - from : null;
  while (mismatches.length && ordersTerminal && !bench.control.drainAbort.signal.aborted && performance.now() < deadline) {
    await sleep(1_000);
    mismatches = await check();
    if (mismatches.length === 0) settledMs = performance.now() - from;
  }
  return { mismatches, settledMs };
}

/** The conservation result of the run: the orders' end (from `tally`) and the stock's (from `checkStock`). */
async function conservation(bench: Bench, orders: Pick<ReturnType<typeof tally>, 'sold' | 'notTerminal' | 'unreadable'>, found: Mismatch[]) {
  let mismatches = found;
  if (bench.db && mismatches.length) {
    const truth = await bench.db.inventoryStock(mismatches.map((m) => m.sku));
    mismatches = mismatches.map((m) => ({ ...m, database: truth.get(m.sku) ?? null }));
  }
  const others = bench.db ? await bench.db.otherOrders(bench.keyPrefix, bench.startedAt, bench.skus) : null;
  const terminal = orders.notTerminal.length === 0 && orders.unreadable.length === 0;
  return {
    result: terminal && mismatches.length === 0 ? 'PASS' : 'FAIL',
    everyOrderTerminal: terminal,
    notTerminalCount: orders.notTerminal.length,
    notTerminal: orders.notTerminal.slice(0, 20),
    unreadable: orders.unreadable,
    skusChecked: bench.skus.length,
    unitsSold: [...orders.sold.values()].reduce((a, b) => a + b, 0),
    mismatches: mismatches.slice(0, 50),
    mismatchCount: mismatches.length,
    otherOrdersOnTheseSkus: others,
  };
}

/** Prints a {@link conservation} result; `unsettled` explains skus that did not add up when the wait for them ended. */
function printConservation(c: Awaited<ReturnType<typeof conservation>>, unsettled: string): void {
  console.log(
    `\nconservation: ${c.result}: ${c.skusChecked} skus, ${c.unitsSold} units sold; ` +
      `${c.everyOrderTerminal ? 'every order terminal' : `${c.notTerminalCount} orders not terminal${c.unreadable.length ? `, ${c.unreadable.length} unreadable` : ''}`}; ` +
      `${c.mismatchCount === 0 ? 'every sku adds up' : `${c.mismatchCount} skus do not add up${unsettled}`}`,
  );
  for (const m of c.mismatches.slice(0, 10)) {
    console.log(`  ${m.sku}: ${m.problem}${m.database ? ` (inventory database: onHand ${m.database.onHand}, reserved ${m.database.reserved})` : ''}`);
  }
  for (const o of c.notTerminal.slice(0, 5)) console.log(`  order ${o.id} is still ${o.status}`);
  for (const u of c.unreadable) console.log(`  unreadable: ${u}`);
  const others = c.otherOrdersOnTheseSkus;
  if (others && others.orders > 0)
    console.log(
      `  note: ${others.orders} orders by others (${others.units} units) touched these skus during the run; the check cannot tell their stock from ours`,
    );
}

function printHops(hops: readonly HopFigures[] | null): void {
  if (!hops?.length) return;
  console.log(
    `\n${table([
      ['event hop (outbox → inbox)', 'events', 'handled/s', 'relay p50', 'relay p99', 'delivery p50', 'delivery p99', 'total p99'],
      ...hops.map((h) => [
        `${h.producer} ${h.eventType} → ${h.consumer}`,
        String(h.events),
        fixed(h.perSecond),
        fixed(h.relayMs.p50, 0),
        fixed(h.relayMs.p99, 0),
        fixed(h.deliveryMs.p50, 0),
        fixed(h.deliveryMs.p99, 0),
        fixed(h.totalMs.p99, 0),
      ]),
    ])}\n  (ms; relay: outbox commit → published; delivery: published → the consumer's inbox transaction)`,
  );
}

/** CPU of one process between two readings, % of one core; null unless it kept its pid. */
function cpuPercent(a: ProcessMemory | undefined, b: ProcessMemory | undefined, wallS: number): number | null {
  return a && b && a.pid !== null && a.pid === b.pid && a.cpuSeconds !== null && b.cpuSeconds !== null ? ((b.cpuSeconds - a.cpuSeconds) / wallS) * 100 : null;
}

/** The machine, and what else loaded it: the 1/5/15-minute load averages at the start and the end. */
function machineInfo(loadAtStart: readonly number[]) {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverageAtStart: loadAtStart,
    loadAverageAtEnd: os.loadavg(),
  };
}

async function writeAndReport(result: unknown, loadAtStart: readonly number[]): Promise<void> {
  const files = await writeResults('saga', jsonSafe(result));
  console.log(`load average (1 min) ${fixed(loadAtStart[0], 2)} at the start, ${fixed(os.loadavg()[0], 2)} at the end, on ${os.cpus().length} CPUs`);
  console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
}

/**
 * One placing phase in the customer process: closed loop, or open loop at `ratePerSecond`. Prints
 * progress every 5 s; Ctrl-C before the customers started still ends placing at once.
 */
async function placeOrders(bench: Bench, tokens: readonly string[], keyPrefix: string, durationS: number, ratePerSecond?: number): Promise<SagaRunResult> {
  const { options, customers } = bench;
  let lastPrinted = 0;
  const running = customers.run(
    {
      url: options.gatewayUrl,
      tokens,
      skus: options.skus,
      quantity: options.quantity,
      paymentMethod: options.method,
      durationMs: durationS * 1000,
      keyPrefix,
      ...(ratePerSecond !== undefined ? { ratePerSecond } : {}),
    },
    (p) => {
      if (p.elapsedMs - lastPrinted < 5_000) return;
      lastPrinted = p.elapsedMs;
      console.log(
        `  ${fixed(p.elapsedMs / 1000, 0).padStart(4)} s  ${p.placed} placed (${fixed(p.placed / (p.elapsedMs / 1000), 0)}/s), ${p.failed} failed` +
          (ratePerSecond !== undefined ? `, ${p.inFlight} in flight` : ''),
      );
    },
  );
  if (bench.control.stopPlacing) customers.stop();
  return running;
}

/** The run's failed placements by code, and up to five distinct errors. */
function failures(run: SagaRunResult): { errorCodes: Record<string, number>; errorSamples: string[] } {
  const errorCodes: Record<string, number> = {};
  for (const f of run.failed) count(errorCodes, f.code);
  return { errorCodes, errorSamples: [...new Set(run.failed.map((f) => f.error))].slice(0, 5) };
}

// ---------------------------------------------------------------------------------------------
// The closed loop (the default)

async function closedLoop(bench: Bench): Promise<number> {
  const { config, options, origin, keyPrefix, adminToken, control, startedAt, loadAtStart } = bench;
  const tokens = await bench.tokens.first(options.customers);
  const processesBefore = await processMemory(config, origin, options);
  console.log(
    `placing: ${options.customers} customers, closed loop, ${options.durationS} s, 1 line × ${options.quantity} of a random sku, ${options.method}; idempotency keys ${keyPrefix}-*`,
  );
  const run = await placeOrders(bench, tokens, keyPrefix, options.durationS);
  const placingEnded = performance.now();
  control.phase = 'drain';
  const placingS = run.elapsedMs / 1000;
  console.log(`placing done: ${run.placed.length} orders in ${fixed(placingS)} s (${fixed(run.placed.length / placingS)}/s), ${run.failed.length} failed`);

  // The end of placing: what is still in flight, and how big each process is under load.
  const apiStatuses = async (ids: readonly string[]) => {
    const counts: Record<string, number> = {};
    for (const v of (await readOrders(options.gatewayUrl, adminToken, ids, false)).values()) count(counts, v instanceof Error ? 'UNREADABLE' : v.status);
    return counts;
  };
  let [backlogStatuses, outbox, memory] = await Promise.all([
    bench.db ? bench.db.runStatuses(keyPrefix) : apiStatuses(run.placed.map((o) => o.id)),
    bench.db ? bench.db.outboxBacklog() : Promise.resolve(null),
    processMemory(config, origin, options),
  ]);
  if (bench.db && run.placed.length > 0 && Object.keys(backlogStatuses).length === 0) {
    await dropForeignDatabases(bench);
    outbox = null;
    backlogStatuses = await apiStatuses(run.placed.map((o) => o.id));
  }
  const backlogReadAfterMs = performance.now() - placingEnded;
  const backlogOrders = notTerminalCount(backlogStatuses);
  console.log(
    `end of placing: ${backlogOrders} orders not terminal (${
      Object.entries(backlogStatuses)
        .map(([s, n]) => `${s} ${n}`)
        .join(', ') || 'none'
    })` +
      (outbox
        ? `; outbox backlog ${Object.entries(outbox)
            .map(([s, n]) => `${s} ${n ?? '?'}`)
            .join(', ')}`
        : ''),
  );

  const { orders, refused, replayed, stillFailed } = await replayFailed(bench, run, tokens);

  // Drain: until every order of the run is terminal, then until the stock has settled.
  // Drain times count from the end of placing, as does the drain timeout.
  const drainStarted = placingEnded;
  const deadline = drainStarted + options.drainTimeoutS * 1000;
  console.log(`drain: waiting for ${orders.length} orders to end (timeout ${options.drainTimeoutS} s)...`);
  const { terminalMs: ordersTerminalMs, dbOrderCount } = await waitTerminal(bench, keyPrefix, orders, drainStarted, deadline);
  console.log(
    ordersTerminalMs !== null
      ? `every order terminal ${seconds(ordersTerminalMs)} after placing ended`
      : `drain ended with orders not terminal (${control.drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout'})`,
  );

  // The outcome of every order, then the stock: wait (within the drain deadline) until every sku
  // adds up. The timelines are read again once the stock has settled, for the figures of the
  // steps that come after CONFIRMED.
  console.log(`reading ${orders.length} orders' timelines...`);
  let tallied = tally(
    orders,
    await readOrders(
      options.gatewayUrl,
      adminToken,
      orders.map((o) => o.id),
      true,
    ),
  );
  const { sold, notTerminal, unreadable } = tallied;
  const { mismatches, settledMs: stockSettledMs } = await checkStock(bench, sold, notTerminal.length === 0, drainStarted, deadline);
  control.phase = 'report';
  const processesAfterDrain = await processMemory(config, origin, options);
  const drainWallS = (performance.now() - placingEnded) / 1000;
  if (stockSettledMs !== null) console.log(`stock settled ${seconds(stockSettledMs)} after placing ended`);
  if (notTerminal.length === 0 && unreadable.length === 0) {
    const again = tally(
      orders,
      await readOrders(
        options.gatewayUrl,
        adminToken,
        orders.map((o) => o.id),
        true,
      ),
    );
    if (again.unreadable.length === 0) tallied = { ...again, sold, notTerminal, unreadable };
  }
  const { outcomes, cancelReasons, reservedMs, confirmedMs, committedMs, responseToConfirmedMs } = tallied;
  const check = await conservation(bench, tallied, mismatches);
  const finalOutbox = bench.db ? await bench.db.outboxBacklog() : null;
  const hops = bench.db ? await bench.db.hops(startedAt) : null;
  const pass = check.result === 'PASS';

  // Figures. CPU is in % of one core, over the placing phase and over the drain (end of placing
  // until the checks), for processes that kept their pid.
  const processes = Object.fromEntries(
    Object.entries(memory).map(([name, m]) => [
      name,
      {
        ...m,
        cpuPercentWhilePlacing: cpuPercent(processesBefore[name], m, placingS),
        cpuPercentWhileDraining: cpuPercent(m, processesAfterDrain[name], drainWallS),
      },
    ]),
  );
  const latency = distribution(run.placed.map((o) => o.latencyMs));
  const reserved = distribution(reservedMs);
  const confirmed = distribution(confirmedMs);
  const responseToConfirmed = distribution(responseToConfirmedMs);
  const committed = distribution(committedMs);
  const perSecond = run.placed.length / placingS;
  // What the saga got through: every order of the run ended within placing + the drain.
  const sagaSeconds = ordersTerminalMs === null ? null : placingS + ordersTerminalMs / 1000;
  const sagaPerMinute = sagaSeconds === null ? Number.NaN : (orders.length / sagaSeconds) * 60;
  const confirmedPerMinute = sagaSeconds === null ? Number.NaN : ((outcomes.CONFIRMED ?? 0) / sagaSeconds) * 60;
  const { errorCodes, errorSamples } = failures(run);
  const targets = [
    {
      target: 'orders placed per minute',
      unit: '/min',
      measured: perSecond * 60,
      floor: TARGETS.ordersPerMinute.floor,
      goal: TARGETS.ordersPerMinute.goal,
      higherIsBetter: true,
    },
    {
      target: 'orders through the saga per minute (all terminal)',
      unit: '/min',
      measured: sagaPerMinute,
      floor: TARGETS.ordersPerMinute.floor,
      goal: TARGETS.ordersPerMinute.goal,
      higherIsBetter: true,
    },
    {
      target: 'placeOrder p99',
      unit: 'ms',
      measured: latency.p99,
      floor: TARGETS.placeOrderP99Ms.floor,
      goal: TARGETS.placeOrderP99Ms.goal,
      higherIsBetter: false,
    },
    {
      target: 'median stock update (PENDING→AWAITING_PAYMENT p50)',
      unit: 'ms',
      measured: reserved.p50,
      floor: TARGETS.stockUpdateP50Ms.floor,
      goal: null,
      higherIsBetter: false,
    },
    { target: 'PENDING→CONFIRMED p99', unit: 'ms', measured: confirmed.p99, floor: null, goal: TARGETS.pendingToConfirmedP99Ms.goal, higherIsBetter: false },
  ].map((t) => {
    const meets = (limit: number | null) =>
      limit === null ? null : Number.isFinite(t.measured) && (t.higherIsBetter ? t.measured >= limit : t.measured < limit);
    return { ...t, floorMet: meets(t.floor), goalMet: meets(t.goal) };
  });

  const result = {
    bench: 'saga',
    mode: 'closed',
    at: new Date().toISOString(),
    machine: machineInfo(loadAtStart),
    settings: {
      customers: options.customers,
      durationSeconds: options.durationS,
      skus: options.skus,
      quantity: options.quantity,
      paymentMethod: options.method,
      drainTimeoutSeconds: options.drainTimeoutS,
      gatewayUrl: options.gatewayUrl,
      replicas: options.replicas,
      workers: options.workers,
      idempotencyKeyPrefix: keyPrefix,
      databaseRead: bench.db !== null,
    },
    placing: {
      seconds: placingS,
      orders: run.placed.length,
      ordersPerSecond: perSecond,
      ordersPerMinute: perSecond * 60,
      failed: run.failed.length,
      errorCodes,
      errorSamples,
      latencyMs: latency,
      sagaSeconds,
      ordersThroughSagaPerMinute: sagaPerMinute,
      confirmedPerMinute,
      refusedAsBusy: refused.length,
      replayedFailures: replayed,
      replayReturnedOrder: replayed - stillFailed.length,
      clientCpuPercent: (run.clientCpuSeconds / placingS) * 100,
    },
    endOfPlacing: {
      readSecondsAfterPlacing: backlogReadAfterMs / 1000,
      ordersByStatus: backlogStatuses,
      ordersNotTerminal: backlogOrders,
      outboxBacklog: outbox,
    },
    processes,
    drain: {
      ordersTerminalSeconds: ordersTerminalMs === null ? null : ordersTerminalMs / 1000,
      stockSettledSeconds: stockSettledMs === null ? null : stockSettledMs / 1000,
      endedBy: ordersTerminalMs !== null ? 'all terminal' : control.drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout',
      outboxBacklogAfter: finalOutbox,
      ordersInDatabase: dbOrderCount,
      ordersTracked: orders.length,
    },
    saga: {
      outcomes,
      endReasons: topReasons(cancelReasons, 10),
      pendingToAwaitingPaymentMs: reserved,
      pendingToConfirmedMs: confirmed,
      pendingToStockCommittedMs: committed,
      hops,
      placeOrderResponseToConfirmedMs: responseToConfirmed,
    },
    conservation: check,
    targets,
    notes: [
      "placing is a closed loop: the rate is what --customers customers reach, not necessarily the stack's limit (--search finds that)",
      ...COMMON_NOTES,
      "RSS is at the end of placing; peak RSS is each process's high-water mark since it started; CPU is % of one core (user + system) over the phase",
      'the load generator runs in its own process on the same machine as the whole stack',
    ],
  };

  // Print.
  const rss = (name: string) => memory[name];
  const cpu = (name: string) => processes[name].cpuPercentWhilePlacing;
  const cpuDrain = (name: string) => processes[name].cpuPercentWhileDraining;
  console.log(
    `\n${table([
      ['placing', 'orders', 'orders/s', 'orders/min', 'failed', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      [
        `${options.customers} customers, ${fixed(placingS)} s`,
        String(run.placed.length),
        fixed(perSecond),
        fixed(perSecond * 60, 0),
        String(run.failed.length),
        fixed(latency.p50),
        fixed(latency.p90),
        fixed(latency.p99),
        fixed(latency.max),
      ],
    ])}`,
  );
  if (run.failed.length)
    console.log(
      `failures by code: ${Object.entries(errorCodes)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')}\n  e.g. ${errorSamples.join('\n       ')}`,
    );
  console.log(
    `\n${table([
      ['saga (timeline)', 'orders', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      ...(
        [
          ['PENDING→AWAITING_PAYMENT', reserved],
          ['PENDING→CONFIRMED', confirmed],
          ['PENDING→StockCommitted', committed],
          ['placeOrder response→CONFIRMED', responseToConfirmed],
        ] as const
      ).map(([label, d]) => [label, String(d.count), fixed(d.p50), fixed(d.p90), fixed(d.p99), fixed(d.max)]),
    ])}`,
  );
  if (sagaSeconds !== null)
    console.log(
      `through the saga: ${orders.length} orders terminal within ${fixed(sagaSeconds)} s of the first placement: ${fixed(sagaPerMinute, 0)}/min (${fixed(confirmedPerMinute, 0)} confirmed/min)`,
    );
  console.log(`outcomes: ${outcomeList(outcomes)}`);
  if (Object.keys(cancelReasons).length)
    console.log(
      `  not confirmed, by reason: ${Object.entries(topReasons(cancelReasons, 5))
        .map(([r, n]) => `${r} (${n})`)
        .join('; ')}`,
    );
  printHops(hops);
  console.log(
    `\nend of placing: ${backlogOrders} orders not terminal${
      outbox
        ? `; outbox backlog: ${Object.entries(outbox)
            .map(([s, n]) => `${s} ${n ?? '?'}`)
            .join(', ')}`
        : ''
    }`,
  );
  console.log(
    `\n${table([
      ['process', 'pid', 'RSS MiB (end of placing)', 'peak RSS MiB', 'CPU % placing', 'CPU % drain'],
      ...Object.keys(memory).map((name) => [
        name,
        String(rss(name).pid ?? '-'),
        mib(rss(name).rssBytes),
        mib(rss(name).peakRssBytes),
        fixed(cpu(name) ?? Number.NaN, 0),
        fixed(cpuDrain(name) ?? Number.NaN, 0),
      ]),
    ])}\n  (CPU: % of one core; placing ${fixed(placingS)} s, drain ${fixed(drainWallS)} s)`,
  );
  for (const name of Object.keys(memory)) if (rss(name).note) console.log(`  ${name}: ${rss(name).note}`);
  console.log(
    `\ndrain: ${ordersTerminalMs !== null ? `every order terminal after ${seconds(ordersTerminalMs)}` : `orders still open when the drain ended (${result.drain.endedBy})`}` +
      `${stockSettledMs !== null ? `, stock settled after ${seconds(stockSettledMs)}` : ''}` +
      `${dbOrderCount !== null && dbOrderCount !== orders.length ? `; the order database has ${dbOrderCount} orders of this run, the bench knows ${orders.length}` : ''}`,
  );
  printConservation(
    check,
    stockSettledMs === null && notTerminal.length === 0
      ? ` (still so when the drain ended by ${control.drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout'})`
      : '',
  );
  const mark = (met: boolean | null) => (met === null ? '—' : met ? 'met' : 'NOT met');
  const show = (value: number | null, unit: string) => (value === null ? '—' : unit === 'ms' ? `${fixed(value, 0)} ms` : fixed(value, 0));
  console.log(
    `\n${table([
      ['target', 'measured', 'floor', 'floor met', 'goal', 'goal met'],
      ...targets.map((t) => [t.target, show(t.measured, t.unit), show(t.floor, t.unit), mark(t.floorMet), show(t.goal, t.unit), mark(t.goalMet)]),
    ])}\n`,
  );

  await writeAndReport(result, loadAtStart);
  if (run.placed.length === 0) {
    console.error(`bench saga: no order was placed${errorSamples.length ? `; e.g. ${errorSamples[0]}` : ''}`);
    return 1;
  }
  return pass ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// The open loop: the capacity search and the overload

/** One open-loop phase (a search step or the overload): what it placed and how its orders ended. */
interface PhaseFigures {
  readonly label: string;
  readonly offeredPerSecond: number;
  /** The window placements were scheduled in. */
  readonly seconds: number;
  /** From the first start until the last answer. */
  readonly elapsedSeconds: number;
  readonly customers: number;
  readonly scheduled: number;
  readonly started: number;
  readonly lateStarts: number;
  readonly maxStartLagMs: number;
  readonly peakInFlight: number;
  /** Orders placeOrder returned. */
  readonly placed: number;
  /** placed over elapsedSeconds. */
  readonly placedPerSecond: number;
  /** Busy refusals by code (OVERLOADED, RATE_LIMITED): nothing stored, not replayed. */
  readonly refused: Record<string, number>;
  /** Other failures whose replay returned no order. */
  readonly failed: number;
  readonly errorCodes: Record<string, number>;
  readonly errorSamples: readonly string[];
  readonly replayedFailures: number;
  readonly replayReturnedOrder: number;
  /** placeOrder round trips of the placed orders. */
  readonly placeOrderMs: Distribution;
  readonly pendingToAwaitingPaymentMs: Distribution;
  readonly pendingToConfirmedMs: Distribution;
  readonly outcomes: Record<string, number>;
  readonly cancelled: Record<CancelCause, number>;
  readonly endReasons: Record<string, number>;
  /** From the end of placing until every order of the phase was terminal; null when the drain ended first. */
  readonly ordersTerminalSeconds: number | null;
  readonly clientCpuPercent: number;
  /** Per process, % of one core from the start of placing until its last answer. */
  readonly cpuPercentWhilePlacing: Record<string, number | null>;
  /** Ctrl-C ended its placing or its drain: not judged. */
  readonly interrupted: boolean;
  /** A search step's verdict (null when interrupted, and for the warm-up and the overload, which are not judged). */
  readonly held: boolean | null;
  readonly notHeldBecause: readonly string[];
}

/** The offered rates of the search: from --rate-start up to --rate-max. */
function searchRates(search: SearchOptions): number[] {
  const rates = [search.rateStart];
  for (;;) {
    const last = rates.at(-1)!;
    const next = Math.round((search.rateStep !== null ? last + search.rateStep : last * search.rateFactor) * 10) / 10;
    if (next > search.rateMax || next <= last) return rates;
    rates.push(next);
  }
}

/** The overload phase: its figures, the capacity it doubled and how its accepted orders ended. */
interface OverloadFigures extends PhaseFigures {
  readonly capacityPerSecond: number;
  readonly capacityFrom: '--rate' | 'search';
  readonly accepted: number;
  /** Accepted orders that reached CONFIRMED (or went on from there). */
  readonly confirmed: number;
  readonly rejected: number;
  readonly everyAcceptedConfirmed: boolean;
}

const causeList = (c: Record<CancelCause, number>) => `deadline ${c.deadline}, payment ${c.payment}, other ${c.other}`;

/**
 * One open-loop phase: places at `rate` orders/s for `durationS` under `<keyPrefix>-<tag>`, replays
 * failed placements, waits until the phase's orders are terminal and reads their timelines. A
 * search step is judged against `p99LimitMs`; the warm-up and the overload (null) are not.
 */
async function openPhase(
  bench: Bench,
  tag: string,
  label: string,
  rate: number,
  durationS: number,
  p99LimitMs: number | null,
): Promise<{ orders: RunOrder[]; figures: PhaseFigures }> {
  const { config, options, origin, control } = bench;
  const keyPrefix = `${bench.keyPrefix}-${tag}`;
  const customerCount = Math.max(options.customers, Math.ceil(rate / bench.customerRate));
  const tokens = await bench.tokens.first(customerCount);
  control.phase = 'placing';
  const before = await processMemory(config, origin, options);
  console.log(`\n${label}: ${fixed(rate)} orders/s offered for ${durationS} s over ${customerCount} customers; idempotency keys ${keyPrefix}-*`);
  const run = await placeOrders(bench, tokens, keyPrefix, durationS, rate);
  const placingEnded = performance.now();
  control.phase = 'drain';
  const after = await processMemory(config, origin, options);
  const schedule = run.schedule!;
  const windowS = schedule.windowMs / 1000;
  if (bench.db && run.placed.length > 0 && Object.keys(await bench.db.runStatuses(keyPrefix)).length === 0) await dropForeignDatabases(bench);
  const { orders, refusedByCode, replayed, stillFailed } = await replayFailed(bench, run, tokens);
  const { terminalMs } = await waitTerminal(bench, keyPrefix, orders, placingEnded, placingEnded + options.drainTimeoutS * 1000);
  const t = tally(
    orders,
    await readOrders(
      options.gatewayUrl,
      bench.adminToken,
      orders.map((o) => o.id),
      true,
    ),
  );

  const { errorCodes, errorSamples } = failures(run);
  // Over the step from its first start to its last answer: a placeOrder that falls behind the
  // schedule stretches that, so the rate drops below the offered one even with every start on time.
  const placedPerSecond = run.placed.length / (run.elapsedMs / 1000);
  const confirmed = distribution(t.confirmedMs);
  const overloaded = refusedByCode.OVERLOADED ?? 0;
  const rateLimited = refusedByCode.RATE_LIMITED ?? 0;
  const cancelled = sum(t.cancelled);
  const notHeldBecause: string[] = [];
  if (confirmed.count === 0) notHeldBecause.push('no order was CONFIRMED');
  else if (p99LimitMs !== null && !(confirmed.p99 <= p99LimitMs)) notHeldBecause.push(`PENDING→CONFIRMED p99 ${fixed(confirmed.p99, 0)} ms > ${p99LimitMs} ms`);
  if (placedPerSecond < ACHIEVED_FRACTION * rate)
    notHeldBecause.push(`placed ${fixed(placedPerSecond)}/s < ${ACHIEVED_FRACTION * 100} % of ${fixed(rate)}/s offered`);
  if (overloaded) notHeldBecause.push(`${overloaded} refused OVERLOADED`);
  if (rateLimited) notHeldBecause.push(`${rateLimited} refused RATE_LIMITED (the gateway's per-customer limit: give more --customers)`);
  if (stillFailed.length) notHeldBecause.push(`${stillFailed.length} placements failed`);
  if (cancelled) notHeldBecause.push(`${cancelled} cancelled (${causeList(t.cancelled)})`);
  if (t.notTerminal.length || t.unreadable.length)
    notHeldBecause.push(`${t.notTerminal.length + t.unreadable.length} orders not terminal (or unreadable) after the drain`);
  const interrupted = control.stopPlacing || control.drainAbort.signal.aborted;
  const figures: PhaseFigures = {
    label,
    offeredPerSecond: rate,
    seconds: windowS,
    elapsedSeconds: run.elapsedMs / 1000,
    customers: customerCount,
    scheduled: schedule.scheduled,
    started: schedule.started,
    lateStarts: schedule.lateStarts,
    maxStartLagMs: schedule.maxStartLagMs,
    peakInFlight: schedule.peakInFlight,
    placed: run.placed.length,
    placedPerSecond,
    refused: refusedByCode,
    failed: stillFailed.length,
    errorCodes,
    errorSamples,
    replayedFailures: replayed,
    replayReturnedOrder: replayed - stillFailed.length,
    placeOrderMs: distribution(run.placed.map((o) => o.latencyMs)),
    pendingToAwaitingPaymentMs: distribution(t.reservedMs),
    pendingToConfirmedMs: confirmed,
    outcomes: t.outcomes,
    cancelled: t.cancelled,
    endReasons: topReasons(t.cancelReasons, 10),
    ordersTerminalSeconds: terminalMs === null ? null : terminalMs / 1000,
    clientCpuPercent: (run.clientCpuSeconds / (run.elapsedMs / 1000)) * 100,
    cpuPercentWhilePlacing: Object.fromEntries(Object.keys(after).map((name) => [name, cpuPercent(before[name], after[name], run.elapsedMs / 1000)])),
    interrupted,
    held: interrupted || p99LimitMs === null ? null : notHeldBecause.length === 0,
    notHeldBecause: p99LimitMs === null ? [] : notHeldBecause,
  };
  console.log(
    `${label}: ${fixed(placedPerSecond)}/s placed of ${fixed(rate)}/s offered; placeOrder p99 ${fixed(figures.placeOrderMs.p99, 0)} ms; ` +
      `PENDING→CONFIRMED p50 ${fixed(confirmed.p50, 0)} ms, p99 ${fixed(confirmed.p99, 0)} ms; outcomes: ${outcomeList(t.outcomes)}` +
      `${terminalMs !== null ? `; all terminal ${seconds(terminalMs)} after placing` : ''}`,
  );
  if (schedule.lateStarts)
    console.log(`  ${schedule.lateStarts} placements started late (up to ${fixed(schedule.maxStartLagMs, 0)} ms; ${schedule.peakInFlight} in flight at most)`);
  if (figures.clientCpuPercent > 80)
    console.log(`  note: the customer process used ${fixed(figures.clientCpuPercent, 0)} % of a core: it may be what limits the rate`);
  return { orders, figures };
}

/** One row of the phases' table. */
function phaseRow(f: PhaseFigures): string[] {
  const busiest = Object.entries(f.cpuPercentWhilePlacing)
    .filter((e): e is [string, number] => e[1] !== null)
    .sort((a, b) => b[1] - a[1])[0];
  return [
    f.label,
    fixed(f.offeredPerSecond),
    fixed(f.placedPerSecond),
    String(f.refused.OVERLOADED ?? 0),
    String(f.failed + (f.refused.RATE_LIMITED ?? 0)),
    String(f.lateStarts),
    fixed(f.placeOrderMs.p50, 0),
    fixed(f.placeOrderMs.p99, 0),
    fixed(f.pendingToAwaitingPaymentMs.p50, 0),
    fixed(f.pendingToConfirmedMs.p50, 0),
    fixed(f.pendingToConfirmedMs.p99, 0),
    String(sum(f.cancelled)),
    busiest ? `${busiest[0]} ${fixed(busiest[1], 0)}` : '-',
    f.interrupted ? 'Ctrl-C' : f.held === null ? '-' : f.held ? 'yes' : 'no',
  ];
}

async function openLoop(bench: Bench): Promise<number> {
  const { options, control, loadAtStart } = bench;
  const search = options.search;
  const steps: PhaseFigures[] = [];
  const allOrders: RunOrder[] = [];
  let warmup: PhaseFigures | null = null;
  let capacity: number | null = null;
  let searchEndedBy: string | null = null;

  if (search) {
    const rates = searchRates(search);
    console.log(
      `capacity search: ${search.warmupS > 0 ? `a ${search.warmupS} s warm-up, then ` : ''}${rates.length} steps at most (${rates
        .slice(0, 6)
        .map((r) => fixed(r))
        .join(', ')}${rates.length > 6 ? `, … ${fixed(rates.at(-1)!)}` : ''} orders/s), ${search.stepDurationS} s each; ` +
        `a step holds while PENDING→CONFIRMED p99 ≤ ${search.p99LimitMs} ms, ≥ ${ACHIEVED_FRACTION * 100} % of the offered rate is placed, nothing is refused OVERLOADED or RATE_LIMITED, fails or is cancelled`,
    );
    if (search.warmupS > 0) {
      const { orders, figures } = await openPhase(bench, 'w', 'warm-up', search.rateStart, search.warmupS, null);
      allOrders.push(...orders);
      warmup = figures;
    }
    for (const [i, rate] of rates.entries()) {
      if (control.stopPlacing) break;
      if (i > 0 || warmup) await sleep(STEP_PAUSE_MS);
      const { orders, figures } = await openPhase(bench, `s${i + 1}`, `step ${i + 1}`, rate, search.stepDurationS, search.p99LimitMs);
      allOrders.push(...orders);
      steps.push(figures);
      if (figures.interrupted) break;
      if (!figures.held) {
        searchEndedBy = `step ${i + 1} (${fixed(rate)}/s) did not hold: ${figures.notHeldBecause.join('; ')}`;
        break;
      }
      capacity = rate;
      if (i === rates.length - 1) searchEndedBy = `every step held up to --rate-max ${search.rateMax}/s`;
    }
    searchEndedBy ??= 'Ctrl-C';
    console.log(`\nsearch ended: ${searchEndedBy}`);
  }

  let overload: OverloadFigures | null = null;
  let overloadSkipped: string | null = null;
  if (options.overload) {
    const base = options.overload.rate ?? capacity;
    if (base === null) overloadSkipped = 'no step of the search held, so there is no capacity to double';
    else if (control.stopPlacing) overloadSkipped = 'Ctrl-C';
    else {
      if (search) await sleep(STEP_PAUSE_MS);
      const { orders, figures } = await openPhase(bench, 'o', 'overload', 2 * base, options.durationS, null);
      allOrders.push(...orders);
      const accepted = orders.length;
      const confirmed = [...SOLD].reduce((n, s) => n + (figures.outcomes[s] ?? 0), 0);
      overload = {
        ...figures,
        capacityPerSecond: base,
        capacityFrom: options.overload.rate !== null ? '--rate' : 'search',
        accepted,
        confirmed,
        rejected: figures.outcomes.REJECTED ?? 0,
        everyAcceptedConfirmed: accepted > 0 && confirmed === accepted,
      };
    }
    if (overloadSkipped) console.log(`\noverload: not run: ${overloadSkipped}`);
  }

  // Every order of the run terminal, then the stock: the conservation check over all phases.
  control.phase = 'drain';
  const drainStarted = performance.now();
  const deadline = drainStarted + options.drainTimeoutS * 1000;
  const { terminalMs } = await waitTerminal(bench, bench.keyPrefix, allOrders, drainStarted, deadline);
  if (terminalMs === null) console.log(`drain ended with orders not terminal (${control.drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout'})`);
  console.log(`\nreading ${allOrders.length} orders for the conservation check...`);
  const all = tally(
    allOrders,
    await readOrders(
      options.gatewayUrl,
      bench.adminToken,
      allOrders.map((o) => o.id),
      true,
    ),
  );
  const { mismatches, settledMs } = await checkStock(bench, all.sold, all.notTerminal.length === 0, drainStarted, deadline);
  control.phase = 'report';
  const check = await conservation(bench, all, mismatches);
  const hops = bench.db ? await bench.db.hops(bench.startedAt) : null;

  const result = {
    bench: 'saga',
    mode: search && options.overload ? 'search+overload' : search ? 'search' : 'overload',
    at: new Date().toISOString(),
    machine: machineInfo(loadAtStart),
    settings: {
      customers: options.customers,
      skus: options.skus,
      quantity: options.quantity,
      paymentMethod: options.method,
      drainTimeoutSeconds: options.drainTimeoutS,
      gatewayUrl: options.gatewayUrl,
      replicas: options.replicas,
      workers: options.workers,
      idempotencyKeyPrefix: bench.keyPrefix,
      databaseRead: bench.db !== null,
      customerRatePerSecond: bench.customerRate,
      search: search ? { ...search, achievedFraction: ACHIEVED_FRACTION } : null,
      overload: options.overload ? { capacityGiven: options.overload.rate, durationSeconds: options.durationS } : null,
    },
    warmup,
    steps,
    capacity: search
      ? {
          ordersPerSecond: capacity,
          ordersPerMinute: capacity === null ? null : capacity * 60,
          searchEndedBy,
        }
      : null,
    overload: options.overload ? (overload ?? { skipped: overloadSkipped }) : null,
    hops,
    conservation: check,
    notes: [
      `placing is an open loop: placements start on a schedule whatever the answers (up to ${OPEN_LOOP_MAX_IN_FLIGHT} in flight; a start more than ${LATE_START_MS} ms behind its time is late); placed/s counts orders placeOrder returned, from the first start until the last answer, so a placeOrder that falls behind lowers it`,
      `each customer (token bench-<n>) places at most ${fixed(bench.customerRate)} orders/s, ${CUSTOMER_RATE_LIMIT_SHARE * 100} % of the gateway's per-subject rate limit as this bench's environment sets it; more customers are used as the rate grows`,
      "a step's figures are its own orders', read once they were all terminal (or the drain timed out); the CPU of each process is over its placing, until the last answer",
      ...COMMON_NOTES,
      'replicas is what --replicas said; the per-process table lists each replica found on its port (a missing one is noted there)',
    ],
  };

  // Print.
  const phases = [...(warmup ? [warmup] : []), ...steps, ...(overload ? [overload] : [])];
  if (phases.length) {
    console.log(
      `\n${table([
        [
          'phase',
          'offered/s',
          'placed/s',
          'OVERLOADED',
          'failed',
          'late',
          'place p50',
          'place p99',
          'reserved p50',
          'confirmed p50',
          'confirmed p99',
          'cancelled',
          'busiest CPU %',
          'held',
        ],
        ...phases.map(phaseRow),
      ])}\n  (ms; place: placeOrder round trip; reserved: PENDING→AWAITING_PAYMENT; confirmed: PENDING→CONFIRMED; failed: other failures and RATE_LIMITED;` +
        `\n   late: starts > ${LATE_START_MS} ms behind schedule; busiest: the process with the most CPU while placing, % of one core)`,
    );
  }
  if (search) {
    const firstFailed = steps.find((s) => s.held === false);
    console.log(
      `\ncapacity: ${capacity === null ? 'no step held' : `${fixed(capacity)} orders/s (${fixed(capacity * 60, 0)}/min), the highest offered rate that held`}` +
        `${firstFailed ? `; ${firstFailed.label} at ${fixed(firstFailed.offeredPerSecond)}/s did not: ${firstFailed.notHeldBecause.join('; ')}` : searchEndedBy ? ` (${searchEndedBy})` : ''}`,
    );
  }
  if (overload) {
    console.log(
      `\noverload: ${fixed(overload.offeredPerSecond)} orders/s offered (2 × ${fixed(overload.capacityPerSecond)}/s from ${overload.capacityFrom}) for ${fixed(overload.seconds)} s:` +
        ` ${overload.accepted} accepted (${fixed(overload.placedPerSecond)}/s), ${overload.refused.OVERLOADED ?? 0} refused OVERLOADED (not replayed)` +
        `${overload.refused.RATE_LIMITED ? `, ${overload.refused.RATE_LIMITED} refused RATE_LIMITED` : ''}, ${overload.failed} other failures`,
    );
    console.log(`  accepted orders: ${outcomeList(overload.outcomes)}; cancelled by cause: ${causeList(overload.cancelled)}`);
    if (Object.keys(overload.endReasons).length)
      console.log(
        `  not confirmed, by reason: ${Object.entries(overload.endReasons)
          .slice(0, 5)
          .map(([r, n]) => `${r} (${n})`)
          .join('; ')}`,
      );
    console.log(`  every accepted order CONFIRMED: ${overload.everyAcceptedConfirmed ? 'yes' : `NO (${overload.confirmed} of ${overload.accepted})`}`);
  }
  for (const f of phases) {
    if (Object.keys(f.errorCodes).length)
      console.log(
        `${f.label}: failures by code: ${Object.entries(f.errorCodes)
          .map(([c, n]) => `${c} ${n}`)
          .join(', ')}; e.g. ${f.errorSamples[0]}`,
      );
  }
  printHops(hops);
  printConservation(
    check,
    settledMs === null && all.notTerminal.length === 0 ? ` (still so when the wait ended by ${control.drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout'})` : '',
  );
  console.log(`\nreplicas: ${options.replicas} of each service (--replicas)${options.workers ? ', each an api process and a worker (--workers)' : ''}\n`);

  await writeAndReport(result, loadAtStart);
  if (allOrders.length === 0) {
    console.error('bench saga: no order was placed');
    return 1;
  }
  return check.result === 'PASS' ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------

async function checkStack(options: Options): Promise<void> {
  const origin = new URL(options.gatewayUrl).origin;
  try {
    await getJson(`${origin}/healthz`);
  } catch (error) {
    const reason = (error as Error).cause ? ((error as Error).cause as Error).message : (error as Error).message;
    throw new NotReady(`the gateway does not answer at ${origin} (${reason}).\nStart the stack with \`npm start\` (or pass --gateway-url).`);
  }
  const { body: ready } = await getJson(`${origin}/readyz`, 10_000).catch(() => ({ body: null as any }));
  const down = Object.entries<{ ok: boolean; error?: string }>(ready?.checks ?? {}).filter(([, c]) => !c.ok);
  if (down.length) throw new NotReady(`subgraphs do not answer (the saga needs all five): ${down.map(([n, c]) => `${n} (${c.error})`).join('; ')}`);
  // A gateway without placeOrder (an older supergraph) would answer every request with a validation error.
  const probe = await graphql(options.gatewayUrl, '{ __type(name: "Mutation") { fields { name } } }').catch(() => null);
  const fields: string[] | undefined = probe?.data?.__type?.fields?.map((f: { name: string }) => f.name);
  if (fields && !fields.includes('placeOrder')) throw new NotReady(`the gateway's schema has no placeOrder mutation (it has ${fields.join(', ')}).`);
}

/** How long a run may take at most, for the watchdog: every phase's placing and drain, and slack. */
function longestRunMs(options: Options): number {
  const phase = (placingS: number) => placingS + options.drainTimeoutS + STEP_PAUSE_MS / 1000;
  let total = 300;
  if (options.search) total += searchRates(options.search).length * phase(options.search.stepDurationS) + phase(options.search.warmupS);
  if (options.overload || !options.search) total += phase(options.durationS);
  // setTimeout fires at once beyond 2^31 - 1 ms.
  return Math.min(total * 1000, 2 ** 31 - 1);
}

export async function main(args: readonly string[]): Promise<number> {
  const config = loadConfig();
  const options = parseOptions(args, `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.gatewayPort}/graphql`);
  const origin = new URL(options.gatewayUrl).origin;
  try {
    await checkStack(options);
  } catch (error) {
    if (error instanceof NotReady) {
      console.error(`bench saga: ${error.message}`);
      return 1;
    }
    throw error;
  }

  const skus = Array.from({ length: options.skus }, (_, i) => seedSku(i + 1));
  const keyPrefix = `saga-${Date.now().toString(36)}`;
  const tokens = new CustomerTokens(config.jwtSecret);
  const adminToken = await signToken(config.jwtSecret, { sub: 'bench-admin', roles: ['admin'] }, '2h');
  const limits = rateLimitSettings(config);
  const customerRate = (limits.operationsPerWindow / limits.windowSeconds) * CUSTOMER_RATE_LIMIT_SHARE;

  // Ctrl-C ends the current phase; in the final reads it quits. npm forwards the terminal's SIGINT
  // to us, which then arrives twice: a second one within half a second is the same keypress.
  const control: Control = { phase: 'placing', stopPlacing: false, drainAbort: new AbortController() };
  let lastInterrupt = 0;
  let customers: Customers | undefined;
  let db: Databases | null = null;
  let bench: Bench | undefined;
  const quit = (code: number) => {
    customers?.child.kill('SIGKILL');
    process.exit(code);
  };
  const onSigint = () => {
    const now = Date.now();
    if (now - lastInterrupt < 500) return;
    lastInterrupt = now;
    if (control.phase === 'placing') {
      console.log('\nCtrl-C: placing ends now, and no more starts; the drain and the checks follow (Ctrl-C again to end the drain)');
      control.stopPlacing = true;
      customers?.stop();
    } else if (control.phase === 'drain') {
      console.log('\nCtrl-C: the drain ends now, and no more placing starts; reporting what was measured (Ctrl-C again to quit)');
      control.stopPlacing = true;
      control.drainAbort.abort();
    } else {
      console.log('\nCtrl-C: quitting without a report');
      quit(130);
    }
  };
  const onSigterm = () => quit(143);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const guard = watchdog(longestRunMs(options), () => customers?.child.kill('SIGKILL'));

  try {
    const opened = await Databases.open(config);
    db = opened.db;
    if (!db)
      console.log(`note: the order database does not answer (${opened.problem}); backlog and drain come from the API alone, and there is no outbox figure`);

    console.log(`reading the stock of ${skus.length} skus (${skus[0]}..${skus.at(-1)})...`);
    const initialStock = await readStock(options.gatewayUrl, skus);
    const empty = skus.filter((s) => initialStock.get(s)!.available < options.quantity);
    if (empty.length)
      console.log(`note: ${empty.length} skus have fewer than ${options.quantity} available (earlier runs sold them): their orders will be REJECTED`);
    console.log(
      `stack: ${options.replicas} of each service (--replicas${options.workers ? ', api and worker apart: --workers' : ''}; the per-process table shows which answered)`,
    );

    customers = await Customers.start();
    bench = {
      config,
      options,
      origin,
      skus,
      keyPrefix,
      adminToken,
      tokens,
      customerRate,
      customers,
      control,
      db,
      initialStock,
      startedAt: new Date(),
      loadAtStart: os.loadavg(),
    };
    return options.search || options.overload ? await openLoop(bench) : await closedLoop(bench);
  } finally {
    await customers?.close();
    // The run may have dropped the databases (another DB_PREFIX): it closed them then.
    await (bench ? bench.db : db)?.close();
    guard.clear();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}
