/**
 * `npm run bench -- saga`: the order saga end to end against the running `npm start` stack.
 *
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
 * Exits 1 when the stack does not answer, no order could be placed, or the check fails.
 * Ctrl-C ends the current phase early (placing, then the drain) and reports what was measured;
 * Ctrl-C during the final reads quits at once.
 */
import { type ChildProcess, execFile, fork } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { signToken } from '../platform/src/auth.ts';
import { SERVICE_NAMES, type Config, type ServiceName, loadConfig, serviceDatabaseUrl } from '../platform/src/config.ts';
import { NotReady, UsageError, fixed, forEachFlag, getJson, mib, percentile, positiveNumber, table, urlOption, watchdog, writeResults } from './lib.ts';
import {
  PLACE_ORDER, placeOrderInput, readPlaceOrder, seedSku,
  type FailedPlacement, type PlacedOrder, type SagaRunResult, type SagaWorkerReply, type SagaWorkerRequest,
} from './saga-protocol.ts';

/** The seed catalogue's size (scripts/seed.ts SEED_PRODUCT_COUNT): SKU-0001..SKU-1000. */
const SEED_SKUS = 1_000;
/** Aliased fields per GraphQL read request (stock levels, orders): the gateway's default GRAPHQL_MAX_ALIASES. */
const BATCH = 15;
/** Read requests in flight at once. */
const READ_CONCURRENCY = 4;
/** Statuses an order of this bench does not leave by itself. */
const TERMINAL = new Set(['CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED']);
/** Codes of a placement refused for being busy: the API stored nothing. */
const BUSY_CODES: ReadonlySet<string> = new Set(['OVERLOADED', 'RATE_LIMITED']);
/** Statuses whose units have left the warehouse. */
const SOLD = new Set(['CONFIRMED', 'SHIPPED', 'DELIVERED']);
const STATUSES = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED'] as const;

/** The platform's performance targets: the floor must hold, the goal is where we want to be. */
const TARGETS = {
  ordersPerMinute: { floor: 1_000, goal: 10_000 },
  placeOrderP99Ms: { floor: 200, goal: 100 },
  stockUpdateP50Ms: { floor: 1_000 },
  pendingToConfirmedP99Ms: { goal: 1_000 },
} as const;

export const USAGE = `usage: npm run bench -- saga [--customers 32] [--duration 30] [--skus 1000] [--quantity 1]
                             [--method tok_visa] [--drain-timeout 120] [--gateway-url URL]

  --customers      concurrent customers, each with its own token bench-<n> (default 32)
  --duration       seconds of placing orders (default 30)
  --skus           order random skus from SKU-0001..SKU-<skus> (default 1000, at most ${SEED_SKUS})
  --quantity       units per order, one line per order (default 1)
  --method         payment method token: tok_visa authorises, tok_decline is declined,
                   tok_timeout never answers (default tok_visa)
  --drain-timeout  seconds to wait after placing for every order to end and the stock to settle (default 120)
  --gateway-url    the running gateway (default http://127.0.0.1:$GATEWAY_PORT/graphql)

Needs the whole stack running (npm start): the five subgraphs, Kafka, the seed catalogue and the
gateway. Reads the service databases (DATABASE_URL, DB_PREFIX) for the backlog when it can.
Ctrl-C ends the current phase early (placing, then the drain) and reports what was measured.`;

interface Options {
  customers: number;
  durationS: number;
  skus: number;
  quantity: number;
  method: string;
  drainTimeoutS: number;
  gatewayUrl: string;
}

function parseOptions(args: readonly string[], defaultGatewayUrl: string): Options {
  const options: Options = { customers: 32, durationS: 30, skus: SEED_SKUS, quantity: 1, method: 'tok_visa', drainTimeoutS: 120, gatewayUrl: defaultGatewayUrl };
  forEachFlag(args, (name, value) => {
    switch (name) {
      case '--customers': options.customers = positiveNumber(name, value(), { integer: true, max: 1024 }); break;
      case '--duration': options.durationS = positiveNumber(name, value(), { max: 3600 }); break;
      case '--skus': options.skus = positiveNumber(name, value(), { integer: true, max: SEED_SKUS }); break;
      case '--quantity': options.quantity = positiveNumber(name, value(), { integer: true, max: 1000 }); break;
      case '--drain-timeout': options.drainTimeoutS = positiveNumber(name, value(), { max: 3600 }); break;
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
      default: throw new UsageError(`unknown option "${name}"`);
    }
  });
  return options;
}


// ---------------------------------------------------------------------------------------------
// GraphQL reads through the gateway

interface GraphQLAnswer { data?: Record<string, any> | null; errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string } }[] }

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
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
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

interface Stock { readonly onHand: number; readonly reserved: number; readonly available: number }

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
    const pools = new Map(SERVICE_NAMES.map((name) => [name, new pg.Pool({ connectionString: serviceDatabaseUrl(config, name), max: 2, connectionTimeoutMillis: 3_000 })]));
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
    const { rows } = await this.#pools.get('order')!.query<{ status: string; n: number }>(
      `select status, count(*)::integer as n from orders where customer_id like 'bench-%' and idempotency_key like $1 group by status`,
      [`${keyPrefix}-%`],
    );
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  /** Unpublished outbox rows per service; null for a service whose outbox cannot be read. */
  async outboxBacklog(): Promise<Record<string, number | null>> {
    const entries = await Promise.all(SERVICE_NAMES.map(async (name) => {
      try {
        const { rows } = await this.#pools.get(name)!.query<{ n: number }>('select count(*)::integer as n from outbox where published_at is null');
        return [name, rows[0].n] as const;
      } catch {
        return [name, null] as const;
      }
    }));
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
    await Promise.all(SERVICE_NAMES.map(async (name) => {
      const pool = this.#pools.get(name)!;
      const [out, inb] = await Promise.all([
        pool.query<{ id: string; created_at: Date; published_at: Date | null }>('select id, created_at, published_at from outbox where created_at >= $1', [since]).catch(() => ({ rows: [] })),
        pool.query<{ consumer: string; event_id: string; event_type: string; processed_at: Date }>(
          'select consumer, event_id, event_type, processed_at from inbox where processed_at >= $1', [since]).catch(() => ({ rows: [] })),
      ]);
      for (const r of out.rows) outbox.set(r.id, { createdAt: r.created_at.getTime(), publishedAt: r.published_at?.getTime() ?? null, producer: name });
      for (const r of inb.rows) inbox.push({ consumer: r.consumer, eventId: r.event_id, eventType: r.event_type, processedAt: r.processed_at.getTime() });
    }));
    const groups = new Map<string, { producer: string; relay: number[]; delivery: number[]; total: number[]; first: number; last: number }>();
    for (const row of inbox) {
      const source = outbox.get(row.eventId);
      if (!source || source.publishedAt === null) continue;
      const key = `${row.consumer}\u0000${row.eventType}`;
      let g = groups.get(key);
      if (!g) groups.set(key, g = { producer: source.producer, relay: [], delivery: [], total: [], first: Infinity, last: -Infinity });
      g.relay.push(source.publishedAt - source.createdAt);
      g.delivery.push(row.processedAt - source.publishedAt);
      g.total.push(row.processedAt - source.createdAt);
      g.first = Math.min(g.first, row.processedAt);
      g.last = Math.max(g.last, row.processedAt);
    }
    return [...groups].map(([key, g]) => {
      const [consumer, eventType] = key.split('\u0000');
      return {
        consumer, eventType, producer: g.producer, events: g.total.length,
        perSecond: g.last > g.first ? (g.total.length - 1) / ((g.last - g.first) / 1000) : Number.NaN,
        relayMs: distribution(g.relay), deliveryMs: distribution(g.delivery), totalMs: distribution(g.total),
      };
    }).sort((a, b) => a.consumer.localeCompare(b.consumer) || b.events - a.events);
  }

  /** The inventory database's own figures for `skus` (to tell a stale read from a wrong figure). */
  async inventoryStock(skus: readonly string[]): Promise<Map<string, { onHand: number; reserved: number }>> {
    const { rows } = await this.#pools.get('inventory')!.query<{ sku: string; on_hand: number; reserved: number }>(
      'select sku, on_hand, reserved from stock where sku = any($1)', [skus],
    );
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

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
let clockTicks: number | undefined;

async function procMemory(pid: number): Promise<{ rssBytes: number | null; peakRssBytes: number | null; cpuSeconds: number | null }> {
  clockTicks ??= await execFileAsync('getconf', ['CLK_TCK']).then(({ stdout }) => Number(stdout.trim()) || 100, () => 100);
  const [status, stat] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''), readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')]);
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = fields.length > 12 ? (Number(fields[11]) + Number(fields[12])) / clockTicks : null;
  const kib = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : null;
  };
  return { rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM'), cpuSeconds };
}

async function processMemory(config: Config, gatewayOrigin: string): Promise<Record<string, ProcessMemory>> {
  const result: Record<string, ProcessMemory> = {};
  try {
    const { body } = await getJson(`${gatewayOrigin}/healthz`);
    result.gateway = {
      pid: body.pid ?? null, rssBytes: body.rssBytes ?? null, peakRssBytes: body.maxRssBytes ?? null,
      cpuSeconds: typeof body.cpuMicros === 'number' ? body.cpuMicros / 1e6 : null,
    };
  } catch (error) {
    result.gateway = { pid: null, rssBytes: null, peakRssBytes: null, cpuSeconds: null, note: `/healthz: ${(error as Error).message}` };
  }
  for (const name of SERVICE_NAMES) {
    let pid = await pidOnPort(config.servicePorts[name]);
    let note: string | undefined;
    if (pid === null) {
      const pids = await pidsByCommandLine(name);
      pid = pids[0] ?? null;
      if (pids.length > 1) note = `several processes run subgraphs/${name}/src/main.ts (${pids.join(', ')}); took the first`;
      if (pids.length === 0) note = `no process found on port ${config.servicePorts[name]}`;
    }
    result[name] = { pid, ...(pid === null ? { rssBytes: null, peakRssBytes: null, cpuSeconds: null } : await procMemory(pid)), ...(note ? { note } : {}) };
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
    child.on('message', (m: SagaWorkerReply) => { if (m.type === 'progress') this.#onProgress(m); });
  }

  static async start(): Promise<Customers> {
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), 'saga-worker.ts');
    const child = fork(entry, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the customer process did not start within 10 s')), 10_000);
      child.once('message', () => { clearTimeout(timer); resolve(); });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the customer process exited during start-up (${code})`)); });
    });
    return new Customers(child);
  }

  run(request: Extract<SagaWorkerRequest, { type: 'run' }>['run'], onProgress: OnProgress): Promise<SagaRunResult> {
    this.#onProgress = onProgress;
    return new Promise((resolve, reject) => {
      const onMessage = (m: SagaWorkerReply) => {
        if (m.type === 'result') { cleanup(); resolve(m.result); }
        if (m.type === 'failed') { cleanup(); reject(new Error(`customer process: ${m.error}`)); }
      };
      const onExit = (code: number | null, signal: string | null) => { cleanup(); reject(new Error(`the customer process exited (${signal ?? code})`)); };
      const cleanup = () => { this.child.off('message', onMessage); this.child.off('exit', onExit); };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ type: 'run', run: request } satisfies SagaWorkerRequest);
    });
  }

  /** Ends placing: every customer finishes its request in flight, then the run reports. */
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

interface Distribution { readonly count: number; readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }

function distribution(values: readonly number[]): Distribution {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  return {
    count: n,
    mean: n ? sorted.reduce((a, b) => a + b, 0) / n : Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: n ? sorted[n - 1] : Number.NaN,
  };
}

/** NaN becomes null in the JSON file (JSON has no NaN). */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
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
    const a = initial.get(sku)!, b = final.get(sku)!, s = sold.get(sku) ?? 0;
    const problems: string[] = [];
    const accounted = b.available + b.reserved + s;
    if (accounted !== a.onHand) problems.push(`initial onHand ${a.onHand} ≠ available ${b.available} + reserved ${b.reserved} + sold ${s} = ${accounted}`);
    if (b.reserved !== a.reserved) problems.push(`reserved ${a.reserved} → ${b.reserved}: ${b.reserved > a.reserved ? 'a reservation was left behind' : 'more was released or committed than the run reserved'}`);
    if (b.available !== Math.max(0, b.onHand - b.reserved)) problems.push(`available ${b.available} ≠ onHand ${b.onHand} − reserved ${b.reserved}`);
    if (problems.length) mismatches.push({ sku, problem: problems.join('; '), initial: a, final: b, sold: s });
  }
  return mismatches;
}

/** Outcomes, units sold per sku and step durations of the run's orders, from their timelines. */
function tally(orders: readonly (PlacedOrder & { replayed?: boolean })[], views: Map<string, OrderView | Error>) {
  const outcomes: Record<string, number> = {};
  const sold = new Map<string, number>();
  const reservedMs: number[] = [], confirmedMs: number[] = [], responseToConfirmedMs: number[] = [], committedMs: number[] = [];
  const unreadable: string[] = [];
  const notTerminal: { id: string; status: string }[] = [];
  const cancelReasons: Record<string, number> = {};
  for (const order of orders) {
    const view = views.get(order.id)!;
    if (view instanceof Error) {
      outcomes.UNREADABLE = (outcomes.UNREADABLE ?? 0) + 1;
      if (unreadable.length < 5) unreadable.push(`${order.id}: ${view.message}`);
      continue;
    }
    outcomes[view.status] = (outcomes[view.status] ?? 0) + 1;
    if (!TERMINAL.has(view.status)) notTerminal.push({ id: order.id, status: view.status });
    if (SOLD.has(view.status)) sold.set(order.sku, (sold.get(order.sku) ?? 0) + order.quantity);
    if (view.status === 'CANCELLED' || view.status === 'REJECTED') {
      // The transition into the final status says why; later entries are compensations (refund, release).
      const cause = view.timeline.find((t) => t.status === view.status);
      const reason = `${view.status}: ${cause?.reason ?? cause?.eventType ?? '?'}`;
      cancelReasons[reason] = (cancelReasons[reason] ?? 0) + 1;
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
  return { outcomes, sold, reservedMs, confirmedMs, responseToConfirmedMs, committedMs, unreadable, notTerminal, cancelReasons };
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
  const tokens = await Promise.all(Array.from({ length: options.customers }, (_, i) => signToken(config.jwtSecret, { sub: `bench-${i + 1}`, roles: ['customer'] }, '2h')));
  const adminToken = await signToken(config.jwtSecret, { sub: 'bench-admin', roles: ['admin'] }, '2h');

  // Ctrl-C ends the current phase; in the final reads it quits. npm forwards the terminal's SIGINT
  // to us, which then arrives twice: a second one within half a second is the same keypress.
  let phase: 'placing' | 'drain' | 'report' = 'placing';
  let stopPlacing = false;
  let lastInterrupt = 0;
  const drainAbort = new AbortController();
  let customers: Customers | undefined;
  let db: Databases | null = null;
  const quit = (code: number) => {
    customers?.child.kill('SIGKILL');
    process.exit(code);
  };
  const onSigint = () => {
    const now = Date.now();
    if (now - lastInterrupt < 500) return;
    lastInterrupt = now;
    if (phase === 'placing') {
      console.log('\nCtrl-C: placing ends now; the drain and the checks follow (Ctrl-C again to end the drain)');
      stopPlacing = true;
      customers?.stop();
    } else if (phase === 'drain') {
      console.log('\nCtrl-C: the drain ends now; reporting what was measured (Ctrl-C again to quit)');
      drainAbort.abort();
    } else {
      console.log('\nCtrl-C: quitting without a report');
      quit(130);
    }
  };
  const onSigterm = () => quit(143);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const guard = watchdog((options.durationS + options.drainTimeoutS + 300) * 1000, () => customers?.child.kill('SIGKILL'));

  try {
    const opened = await Databases.open(config);
    db = opened.db;
    if (!db) console.log(`note: the order database does not answer (${opened.problem}); backlog and drain come from the API alone, and there is no outbox figure`);

    console.log(`reading the stock of ${skus.length} skus (${skus[0]}..${skus.at(-1)})...`);
    const initialStock = await readStock(options.gatewayUrl, skus);
    const empty = skus.filter((s) => initialStock.get(s)!.available < options.quantity);
    if (empty.length) console.log(`note: ${empty.length} skus have fewer than ${options.quantity} available (earlier runs sold them): their orders will be REJECTED`);

    customers = await Customers.start();
    const processesBefore = await processMemory(config, origin);
    const startedAt = new Date();
    const loadAtStart = os.loadavg();
    console.log(`placing: ${options.customers} customers, closed loop, ${options.durationS} s, 1 line × ${options.quantity} of a random sku, ${options.method}; idempotency keys ${keyPrefix}-*`);
    let lastPrinted = 0;
    const running = customers.run(
      { url: options.gatewayUrl, tokens, skus: options.skus, quantity: options.quantity, paymentMethod: options.method, durationMs: options.durationS * 1000, keyPrefix },
      (p) => {
        if (p.elapsedMs - lastPrinted < 5_000) return;
        lastPrinted = p.elapsedMs;
        console.log(`  ${fixed(p.elapsedMs / 1000, 0).padStart(4)} s  ${p.placed} placed (${fixed(p.placed / (p.elapsedMs / 1000), 0)}/s), ${p.failed} failed`);
      },
    );
    // Ctrl-C before the customers started still ends placing at once.
    if (stopPlacing) customers.stop();
    const run = await running;
    const placingEnded = performance.now();
    phase = 'drain';
    const placingS = run.elapsedMs / 1000;
    console.log(`placing done: ${run.placed.length} orders in ${fixed(placingS)} s (${fixed(run.placed.length / placingS)}/s), ${run.failed.length} failed`);

    // The end of placing: what is still in flight, and how big each process is under load.
    const apiStatuses = async (ids: readonly string[]) => {
      const counts: Record<string, number> = {};
      for (const v of (await readOrders(options.gatewayUrl, adminToken, ids, false)).values()) {
        const status = v instanceof Error ? 'UNREADABLE' : v.status;
        counts[status] = (counts[status] ?? 0) + 1;
      }
      return counts;
    };
    let [backlogStatuses, outbox, memory] = await Promise.all([
      db ? db.runStatuses(keyPrefix) : apiStatuses(run.placed.map((o) => o.id)),
      db ? db.outboxBacklog() : Promise.resolve(null),
      processMemory(config, origin),
    ]);
    if (db && run.placed.length > 0 && Object.keys(backlogStatuses).length === 0) {
      // The stack writes to other databases than the ones this bench reads (DB_PREFIX differs).
      console.log(`note: the order database ${serviceDatabaseUrl(config, 'order').replace(/\/\/[^@/]*@/, '//')} holds none of this run's orders ` +
        '(is the stack running with another DB_PREFIX?); backlog and drain come from the API alone, and there is no outbox figure');
      await db.close();
      db = null;
      outbox = null;
      backlogStatuses = await apiStatuses(run.placed.map((o) => o.id));
    }
    const backlogReadAfterMs = performance.now() - placingEnded;
    const backlogOrders = Object.entries(backlogStatuses).filter(([s]) => !TERMINAL.has(s)).reduce((n, [, c]) => n + c, 0);
    console.log(`end of placing: ${backlogOrders} orders not terminal (${Object.entries(backlogStatuses).map(([s, n]) => `${s} ${n}`).join(', ') || 'none'})` +
      (outbox ? `; outbox backlog ${Object.entries(outbox).map(([s, n]) => `${s} ${n ?? '?'}`).join(', ')}` : ''));

    // A placeOrder that failed may still have created its order (a lost response): replaying its
    // idempotency key with the same input returns that order, or places it now. Either way the
    // run then knows every order it caused, which the stock check needs.
    // A refusal for being busy (OVERLOADED, RATE_LIMITED) stored nothing, by contract: not replayed.
    const orders: (PlacedOrder & { replayed?: boolean })[] = [...run.placed];
    const refused = run.failed.filter((f) => BUSY_CODES.has(f.code));
    const replay = run.failed.filter((f) => !BUSY_CODES.has(f.code)).slice(0, 2_000);
    if (refused.length) {
      const byCode = new Map<string, number>();
      for (const f of refused) byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
      console.log(`refused as busy: ${refused.length} placements (${[...byCode].map(([code, n]) => `${code} ${n}`).join(', ')}); nothing was stored, so they are not replayed`);
    }
    const stillFailed: FailedPlacement[] = [];
    if (replay.length) {
      let next = 0;
      const lane = async () => {
        while (next < replay.length) {
          const f = replay[next++];
          try {
            const response = await fetch(options.gatewayUrl, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[f.customer - 1]}` },
              body: JSON.stringify({ operationName: 'PlaceOrder', query: PLACE_ORDER, variables: { input: placeOrderInput(f.customer, f.idempotencyKey, f.sku, f.quantity, options.method) } }),
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

    // Drain: until every order of the run is terminal, then until the stock has settled.
    // Drain times count from the end of placing, as does the drain timeout.
    const drainStarted = placingEnded;
    const deadline = drainStarted + options.drainTimeoutS * 1000;
    let ordersTerminalMs: number | null = null;
    let lastStatuses: Record<string, number> = {};
    let dbOrderCount: number | null = null;
    let pending = new Set(orders.map((o) => o.id));
    let lastReport = 0;
    console.log(`drain: waiting for ${orders.length} orders to end (timeout ${options.drainTimeoutS} s)...`);
    while (!drainAbort.signal.aborted) {
      let open: number;
      if (db) {
        lastStatuses = await db.runStatuses(keyPrefix);
        dbOrderCount = Object.values(lastStatuses).reduce((a, b) => a + b, 0);
        open = Object.entries(lastStatuses).filter(([s]) => !TERMINAL.has(s)).reduce((n, [, c]) => n + c, 0);
      } else {
        const views = await readOrders(options.gatewayUrl, adminToken, [...pending], false);
        pending = new Set([...views].filter(([, v]) => v instanceof Error || !TERMINAL.has(v.status)).map(([id]) => id));
        open = pending.size;
      }
      if (open === 0) {
        ordersTerminalMs = performance.now() - drainStarted;
        break;
      }
      const now = performance.now();
      if (now >= deadline) break;
      if (now - lastReport >= 5_000) {
        lastReport = now;
        console.log(`  ${fixed((now - drainStarted) / 1000, 0).padStart(4)} s  ${open} orders not terminal`);
      }
      await sleep(db ? 500 : 2_000);
    }
    console.log(ordersTerminalMs !== null ? `every order terminal ${seconds(ordersTerminalMs)} after placing ended` : `drain ended with orders not terminal (${drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout'})`);

    // The outcome of every order, then the stock: after the orders, inventory still commits and
    // releases, so wait (within the drain deadline) until every sku adds up. The timelines are read
    // again once the stock has settled, for the figures of the steps that come after CONFIRMED.
    console.log(`reading ${orders.length} orders' timelines...`);
    let tallied = tally(orders, await readOrders(options.gatewayUrl, adminToken, orders.map((o) => o.id), true));
    const { sold, notTerminal, unreadable } = tallied;
    let finalStock = await readStock(options.gatewayUrl, skus);
    let mismatches = checkConservation(skus, initialStock, finalStock, sold);
    let stockSettledMs: number | null = mismatches.length === 0 ? performance.now() - drainStarted : null;
    while (mismatches.length && notTerminal.length === 0 && !drainAbort.signal.aborted && performance.now() < deadline) {
      await sleep(1_000);
      finalStock = await readStock(options.gatewayUrl, skus);
      mismatches = checkConservation(skus, initialStock, finalStock, sold);
      if (mismatches.length === 0) stockSettledMs = performance.now() - drainStarted;
    }
    phase = 'report';
    const processesAfterDrain = await processMemory(config, origin);
    const drainWallS = (performance.now() - placingEnded) / 1000;
    if (stockSettledMs !== null) console.log(`stock settled ${seconds(stockSettledMs)} after placing ended`);
    if (notTerminal.length === 0 && unreadable.length === 0) {
      const again = tally(orders, await readOrders(options.gatewayUrl, adminToken, orders.map((o) => o.id), true));
      if (again.unreadable.length === 0) tallied = { ...again, sold, notTerminal, unreadable };
    }
    const { outcomes, cancelReasons, reservedMs, confirmedMs, committedMs, responseToConfirmedMs } = tallied;
    if (db && mismatches.length) {
      const truth = await db.inventoryStock(mismatches.map((m) => m.sku));
      mismatches = mismatches.map((m) => ({ ...m, database: truth.get(m.sku) ?? null }));
    }
    const others = db ? await db.otherOrders(keyPrefix, startedAt, skus) : null;
    const finalOutbox = db ? await db.outboxBacklog() : null;
    const hops = db ? await db.hops(startedAt) : null;
    const terminal = notTerminal.length === 0 && unreadable.length === 0;
    const conserved = mismatches.length === 0;
    const pass = terminal && conserved;

    // Figures. CPU is in % of one core, over the placing phase and over the drain (end of placing
    // until the checks), for processes that kept their pid.
    const cpuPercent = (a: ProcessMemory | undefined, b: ProcessMemory | undefined, wallS: number) =>
      a && b && a.pid !== null && a.pid === b.pid && a.cpuSeconds !== null && b.cpuSeconds !== null ? ((b.cpuSeconds - a.cpuSeconds) / wallS) * 100 : null;
    const processes = Object.fromEntries(Object.entries(memory).map(([name, m]) => [name, {
      ...m,
      cpuPercentWhilePlacing: cpuPercent(processesBefore[name], m, placingS),
      cpuPercentWhileDraining: cpuPercent(m, processesAfterDrain[name], drainWallS),
    }]));
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
    const errorCodes: Record<string, number> = {};
    for (const f of run.failed) errorCodes[f.code] = (errorCodes[f.code] ?? 0) + 1;
    const errorSamples = [...new Set(run.failed.map((f) => f.error))].slice(0, 5);
    const targets = [
      { target: 'orders placed per minute', unit: '/min', measured: perSecond * 60, floor: TARGETS.ordersPerMinute.floor, goal: TARGETS.ordersPerMinute.goal, higherIsBetter: true },
      { target: 'orders through the saga per minute (all terminal)', unit: '/min', measured: sagaPerMinute, floor: TARGETS.ordersPerMinute.floor, goal: TARGETS.ordersPerMinute.goal, higherIsBetter: true },
      { target: 'placeOrder p99', unit: 'ms', measured: latency.p99, floor: TARGETS.placeOrderP99Ms.floor, goal: TARGETS.placeOrderP99Ms.goal, higherIsBetter: false },
      { target: 'median stock update (PENDING→AWAITING_PAYMENT p50)', unit: 'ms', measured: reserved.p50, floor: TARGETS.stockUpdateP50Ms.floor, goal: null, higherIsBetter: false },
      { target: 'PENDING→CONFIRMED p99', unit: 'ms', measured: confirmed.p99, floor: null, goal: TARGETS.pendingToConfirmedP99Ms.goal, higherIsBetter: false },
    ].map((t) => {
      const meets = (limit: number | null) => limit === null ? null : Number.isFinite(t.measured) && (t.higherIsBetter ? t.measured >= limit : t.measured < limit);
      return { ...t, floorMet: meets(t.floor), goalMet: meets(t.goal) };
    });

    const result = {
      bench: 'saga',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}`,
        // Anything else running on the machine competes with the stack: the 1/5/15-minute load averages.
        loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg(),
      },
      settings: { customers: options.customers, durationSeconds: options.durationS, skus: options.skus, quantity: options.quantity, paymentMethod: options.method, drainTimeoutSeconds: options.drainTimeoutS, gatewayUrl: options.gatewayUrl, idempotencyKeyPrefix: keyPrefix, databaseRead: db !== null },
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
        replayedFailures: replay.length,
        replayReturnedOrder: replay.length - stillFailed.length,
      },
      endOfPlacing: { readSecondsAfterPlacing: backlogReadAfterMs / 1000, ordersByStatus: backlogStatuses, ordersNotTerminal: backlogOrders, outboxBacklog: outbox },
      processes,
      drain: {
        ordersTerminalSeconds: ordersTerminalMs === null ? null : ordersTerminalMs / 1000,
        stockSettledSeconds: stockSettledMs === null ? null : stockSettledMs / 1000,
        endedBy: ordersTerminalMs !== null ? 'all terminal' : drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout',
        outboxBacklogAfter: finalOutbox,
        ordersInDatabase: dbOrderCount,
        ordersTracked: orders.length,
      },
      saga: {
        outcomes,
        endReasons: Object.fromEntries(Object.entries(cancelReasons).sort((a, b) => b[1] - a[1]).slice(0, 10)),
        pendingToAwaitingPaymentMs: reserved,
        pendingToConfirmedMs: confirmed,
        pendingToStockCommittedMs: committed,
        hops,
        placeOrderResponseToConfirmedMs: responseToConfirmed,
      },
      conservation: {
        result: pass ? 'PASS' : 'FAIL',
        everyOrderTerminal: terminal,
        notTerminal: notTerminal.slice(0, 20),
        unreadable,
        skusChecked: skus.length,
        unitsSold: [...sold.values()].reduce((a, b) => a + b, 0),
        mismatches: mismatches.slice(0, 50),
        mismatchCount: mismatches.length,
        otherOrdersOnTheseSkus: others,
      },
      targets,
      notes: [
        'placing is a closed loop: the rate is what --customers customers reach, not necessarily the stack\'s limit',
        'PENDING→X times are the order timeline\'s own timestamps (transaction start times in the order database), so they include Kafka and every consumer hop but not the client\'s HTTP time',
        '"stock update" is PENDING→AWAITING_PAYMENT: inventory\'s reservation committed before order saw StockReserved, so this is an upper bound of when stockLevel shows it',
        'RSS is at the end of placing; peak RSS is each process\'s high-water mark since it started; CPU is % of one core (user + system) over the phase',
        'hops (when the databases are readable): relay = outbox commit → published to Kafka; delivery = published → the consumer\'s inbox transaction (Kafka, consumer lag and the handler\'s queue); handled/s is between the consumer\'s first and last event of the run',
        'the load generator runs in its own process on the same machine as the whole stack',
      ],
    };

    // Print.
    const rss = (name: string) => memory[name];
    const cpu = (name: string) => processes[name].cpuPercentWhilePlacing;
    const cpuDrain = (name: string) => processes[name].cpuPercentWhileDraining;
    console.log(`\n${table([
      ['placing', 'orders', 'orders/s', 'orders/min', 'failed', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      [`${options.customers} customers, ${fixed(placingS)} s`, String(run.placed.length), fixed(perSecond), fixed(perSecond * 60, 0), String(run.failed.length),
        fixed(latency.p50), fixed(latency.p90), fixed(latency.p99), fixed(latency.max)],
    ])}`);
    if (run.failed.length) console.log(`failures by code: ${Object.entries(errorCodes).map(([c, n]) => `${c} ${n}`).join(', ')}\n  e.g. ${errorSamples.join('\n       ')}`);
    console.log(`\n${table([
      ['saga (timeline)', 'orders', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      ...([['PENDING→AWAITING_PAYMENT', reserved], ['PENDING→CONFIRMED', confirmed], ['PENDING→StockCommitted', committed], ['placeOrder response→CONFIRMED', responseToConfirmed]] as const)
        .map(([label, d]) => [label, String(d.count), fixed(d.p50), fixed(d.p90), fixed(d.p99), fixed(d.max)]),
    ])}`);
    if (sagaSeconds !== null) console.log(`through the saga: ${orders.length} orders terminal within ${fixed(sagaSeconds)} s of the first placement: ${fixed(sagaPerMinute, 0)}/min (${fixed(confirmedPerMinute, 0)} confirmed/min)`);
    console.log(`outcomes: ${[...STATUSES].filter((s) => outcomes[s]).map((s) => `${s} ${outcomes[s]}`).concat(outcomes.UNREADABLE ? [`UNREADABLE ${outcomes.UNREADABLE}`] : []).join(', ')}`);
    if (Object.keys(cancelReasons).length) console.log(`  not confirmed, by reason: ${Object.entries(cancelReasons).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([r, n]) => `${r} (${n})`).join('; ')}`);
    if (hops?.length) {
      console.log(`\n${table([
        ['event hop (outbox → inbox)', 'events', 'handled/s', 'relay p50', 'relay p99', 'delivery p50', 'delivery p99', 'total p99'],
        ...hops.map((h) => [`${h.producer} ${h.eventType} → ${h.consumer}`, String(h.events), fixed(h.perSecond), fixed(h.relayMs.p50, 0), fixed(h.relayMs.p99, 0),
          fixed(h.deliveryMs.p50, 0), fixed(h.deliveryMs.p99, 0), fixed(h.totalMs.p99, 0)]),
      ])}\n  (ms; relay: outbox commit → published; delivery: published → the consumer's inbox transaction)`);
    }
    console.log(`\nend of placing: ${backlogOrders} orders not terminal${outbox ? `; outbox backlog: ${Object.entries(outbox).map(([s, n]) => `${s} ${n ?? '?'}`).join(', ')}` : ''}`);
    console.log(`\n${table([
      ['process', 'pid', 'RSS MiB (end of placing)', 'peak RSS MiB', 'CPU % placing', 'CPU % drain'],
      ...['gateway', ...SERVICE_NAMES].map((name) => [name, String(rss(name).pid ?? '-'), mib(rss(name).rssBytes), mib(rss(name).peakRssBytes),
        fixed(cpu(name) ?? Number.NaN, 0), fixed(cpuDrain(name) ?? Number.NaN, 0)]),
    ])}\n  (CPU: % of one core; placing ${fixed(placingS)} s, drain ${fixed(drainWallS)} s)`);
    for (const name of ['gateway', ...SERVICE_NAMES]) if (rss(name).note) console.log(`  ${name}: ${rss(name).note}`);
    console.log(`\ndrain: ${ordersTerminalMs !== null ? `every order terminal after ${seconds(ordersTerminalMs)}` : `orders still open when the drain ended (${result.drain.endedBy})`}` +
      `${stockSettledMs !== null ? `, stock settled after ${seconds(stockSettledMs)}` : ''}` +
      `${dbOrderCount !== null && dbOrderCount !== orders.length ? `; the order database has ${dbOrderCount} orders of this run, the bench knows ${orders.length}` : ''}`);
    console.log(`\nconservation: ${pass ? 'PASS' : 'FAIL'}: ${skus.length} skus, ${result.conservation.unitsSold} units sold; ` +
      `${terminal ? 'every order terminal' : `${notTerminal.length} orders not terminal${unreadable.length ? `, ${unreadable.length} unreadable` : ''}`}; ` +
      `${conserved ? 'every sku adds up' : `${mismatches.length} skus do not add up${stockSettledMs === null && notTerminal.length === 0 ? ` (still so when the drain ended by ${drainAbort.signal.aborted ? 'Ctrl-C' : 'timeout'})` : ''}`}`);
    for (const m of mismatches.slice(0, 10)) {
      console.log(`  ${m.sku}: ${m.problem}${m.database ? ` (inventory database: onHand ${m.database.onHand}, reserved ${m.database.reserved})` : ''}`);
    }
    for (const o of notTerminal.slice(0, 5)) console.log(`  order ${o.id} is still ${o.status}`);
    for (const u of unreadable) console.log(`  unreadable: ${u}`);
    if (others && others.orders > 0) console.log(`  note: ${others.orders} orders by others (${others.units} units) touched these skus during the run; the check cannot tell their stock from ours`);
    const mark = (met: boolean | null) => (met === null ? '—' : met ? 'met' : 'NOT met');
    const show = (value: number | null, unit: string) => (value === null ? '—' : unit === 'ms' ? `${fixed(value, 0)} ms` : fixed(value, 0));
    console.log(`\n${table([
      ['target', 'measured', 'floor', 'floor met', 'goal', 'goal met'],
      ...targets.map((t) => [t.target, show(t.measured, t.unit), show(t.floor, t.unit), mark(t.floorMet), show(t.goal, t.unit), mark(t.goalMet)]),
    ])}\n`);

    const files = await writeResults('saga', jsonSafe(result));
    console.log(`load average (1 min) ${fixed(loadAtStart[0], 2)} at the start, ${fixed(os.loadavg()[0], 2)} at the end, on ${os.cpus().length} CPUs`);
    console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    if (run.placed.length === 0) {
      console.error(`bench saga: no order was placed${errorSamples.length ? `; e.g. ${errorSamples[0]}` : ''}`);
      return 1;
    }
    return pass ? 0 : 1;
  } finally {
    await customers?.close();
    await db?.close();
    guard.clear();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}
