/**
 * The chaos suite (issue 11): a steady load of customers placing orders through the gateway, with
 * live subscribers on their orders and on the skus, while faults are injected one after another:
 * SIGKILL of each service and of the gateway, SIGKILL of the Kafka broker, a PostgreSQL crash, a
 * Redis restart and a stall of one service (SIGSTOP, then SIGCONT). Everything runs on its own
 * PostgreSQL, Redis and Kafka (scratch servers on free ports) and its own processes, so the shared
 * servers and other tests are never touched.
 *
 * After the load it checks that nothing was lost or applied twice, and measures, per fault, how long
 * orders stopped flowing and what customers were told meanwhile. `npm run chaos` prints the report
 * (test/chaos/run.ts); test/chaos/chaos.test.ts runs the short form in `npm test`.
 */
import { randomInt } from 'node:crypto';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { type ServiceName, SERVICE_NAMES, dlqTopic, eventsTopic, outboxBacklog } from '@swiftcart/platform';
import { TestKafkaBroker } from '../support/kafka-broker.ts';
import { TestPostgresServer } from '../support/postgres-server.ts';
import { TestRedisServer } from '../support/redis-server.ts';
import { type ProcessStack, drainSystem, orderInput, seedSaga, sleep, startProcessStack, waitFor } from '../support/saga.ts';
import { wsUrl } from '../support/subscriptions.ts';

/** The faults the suite knows, in the order it injects them. */
export const FAULTS = [
  'kill product',
  'kill inventory',
  'kill order',
  'kill payment',
  'kill shipment',
  'kill gateway',
  'kill kafka',
  'restart postgres',
  'restart redis',
  'stall',
] as const;
export type FaultName = (typeof FAULTS)[number];

/** How hard and how long the suite runs. */
export interface ChaosOptions {
  /** Customers placing orders concurrently, each in a closed loop. */
  readonly customers: number;
  /** A customer's pause between one accepted order and the next. */
  readonly thinkMs: number;
  /** Skus in the catalogue (each with more stock than the run can sell). */
  readonly skus: number;
  /** The share of orders paid with a card that is declined (they end CANCELLED, releasing stock). */
  readonly declineShare: number;
  /** How long the stalled service stays stopped. */
  readonly stallMs: number;
  /** The service that is stalled. */
  readonly stallTarget: ServiceName;
  /** Orders confirmed before the first fault, and after each fault once orders flow again. */
  readonly settleOrders: number;
  /** How many times the whole list of faults is gone through. */
  readonly rounds: number;
  /** Only these faults (default: all of {@link FAULTS}). */
  readonly faults?: readonly FaultName[];
  /** How long orders may take to flow again after a fault before it counts as a failure. */
  readonly recoveryTimeoutMs: number;
  /** Progress lines. */
  readonly log: (line: string) => void;
  /** Aborting it stops the run at once: everything started is stopped, and the run rejects. */
  readonly signal?: AbortSignal;
}

/**
 * The short form that `npm test` runs: one of each kind of fault, a small load. Of the service
 * kills it keeps inventory's (a saga participant) and order's (the orchestrator): product, payment
 * and shipment die the same way and the long form kills them, while `npm test` has 20 minutes.
 */
export const SHORT_FORM: Omit<ChaosOptions, 'log'> = {
  customers: 3,
  thinkMs: 250,
  skus: 4,
  declineShare: 0.1,
  stallMs: 20_000,
  stallTarget: 'inventory',
  settleOrders: 5,
  rounds: 1,
  faults: ['kill inventory', 'kill order', 'kill gateway', 'kill kafka', 'restart postgres', 'restart redis', 'stall'],
  recoveryTimeoutMs: 90_000,
};

/** The long form (`npm run chaos`): more customers, every fault twice. */
export const LONG_FORM: Omit<ChaosOptions, 'log'> = {
  customers: 8,
  thinkMs: 100,
  skus: 8,
  declineShare: 0.1,
  stallMs: 20_000,
  stallTarget: 'inventory',
  settleOrders: 40,
  rounds: 2,
  recoveryTimeoutMs: 120_000,
};

/** What happened around one fault. */
export interface FaultReport {
  readonly fault: string;
  /** From the start of the injection until the fault was over (the process back, the broker answering). */
  readonly injectedMs: number;
  /** From the start of the injection until a placeOrder sent since then was accepted. */
  readonly acceptingAgainMs: number | null;
  /** From the start of the injection until an order sent since then was CONFIRMED: orders flow again. */
  readonly flowingAgainMs: number | null;
  /** Orders accepted from this fault until the next one. */
  readonly accepted: number;
  /** placeOrder attempts refused from this fault until the next one, by error code. */
  readonly refused: Record<string, number>;
  /** Orders placed from this fault until the next one that ended REJECTED or CANCELLED, by cause. */
  readonly cancelled: Record<string, number>;
}

/** Everything the suite measured and checked. */
export interface ChaosReport {
  readonly options: Omit<ChaosOptions, 'log'>;
  readonly durationMs: number;
  /** Orders by final status. */
  readonly statuses: Record<string, number>;
  readonly accepted: number;
  /** Orders whose customer gave up after retrying for a minute. */
  readonly abandoned: number;
  /** Before the first fault, then one per fault. */
  readonly windows: readonly FaultReport[];
  readonly live: {
    readonly orderSubscriptions: number;
    readonly skuSubscriptions: number;
    /** Errors the subscribers received (each followed by a new subscription), by code. */
    readonly errors: Record<string, number>;
    /** Times the sockets were closed under the subscribers (each followed by a reconnect). */
    readonly reconnects: number;
  };
  /** Every check that failed, in words; empty when the run passed. */
  readonly failures: readonly string[];
}

const TERMINAL = new Set(['CONFIRMED', 'REJECTED', 'CANCELLED', 'SHIPPED', 'DELIVERED']);
const REQUEST_TIMEOUT_MS = 10_000;
const GIVE_UP_MS = 60_000;
const RETRY_MS = 300;
const FINAL_TIMEOUT_MS = 180_000;
const LIVE_TIMEOUT_MS = 30_000;

const PLACE_ORDER = `mutation PlaceOrder($input: PlaceOrderInput!) { placeOrder(input: $input) { id status version } }`;
const ORDER_UPDATED = `subscription Follow($id: ID!) { orderUpdated(id: $id) { id status version } }`;
const STOCK_CHANGED = `subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku version } }`;

function increment(counts: Record<string, number>, key: string, by = 1): void {
  counts[key] = (counts[key] ?? 0) + by;
}

/** One accepted order as its customer saw it. */
interface Placed {
  readonly id: string;
  readonly sentAt: number;
  readonly acceptedAt: number;
}
/** One refused placeOrder attempt. */
interface Refusal {
  readonly at: number;
  readonly code: string;
}

/**
 * Live subscribers: one graphql-ws socket per customer (their orders) and one for the skus, each
 * reconnecting and resubscribing after any close or error, as a storefront does. Keeps the last
 * version seen per order and sku, and every time a version went backwards.
 */
class LiveFollowers {
  readonly lastVersion = new Map<string, number>();
  readonly regressions: string[] = [];
  readonly errors: Record<string, number> = {};
  reconnects = 0;
  orderSubscriptions = 0;
  skuSubscriptions = 0;
  readonly #clients: Client[] = [];
  readonly #stops: (() => void)[] = [];
  #closed = false;

  readonly #gatewayUrl: string;

  constructor(gatewayUrl: string) {
    this.#gatewayUrl = gatewayUrl;
  }

  client(token: string | null): Client {
    const client = createClient({
      url: wsUrl(this.#gatewayUrl),
      webSocketImpl: WebSocket,
      lazy: true,
      retryAttempts: Number.MAX_SAFE_INTEGER,
      shouldRetry: () => true,
      retryWait: () => sleep(200 + randomInt(300)),
      connectionParams: token ? { authorization: `Bearer ${token}` } : {},
      on: {
        closed: () => {
          if (!this.#closed) this.reconnects++;
        },
      },
    });
    this.#clients.push(client);
    return client;
  }

  #see(key: string, version: number): void {
    const previous = this.lastVersion.get(key);
    if (previous !== undefined && version < previous) this.regressions.push(`${key}: version ${version} after ${previous}`);
    this.lastVersion.set(key, Math.max(version, previous ?? 0));
  }

  /** Subscribes, and subscribes again after an error or completion until {@link LiveFollowers.close}. */
  #follow(client: Client, query: string, variables: Record<string, unknown>, onData: (data: any) => void): void {
    let unsubscribe = () => {};
    let stopped = false;
    const start = () => {
      unsubscribe = client.subscribe(
        { query, variables },
        {
          next: (result) => {
            if (result.errors?.length) {
              for (const error of result.errors) increment(this.errors, String(error.extensions?.code ?? 'NO_CODE'));
            } else if (result.data) onData(result.data);
          },
          error: (error) => {
            const code = Array.isArray(error) ? String(error[0]?.extensions?.code ?? 'NO_CODE') : 'SOCKET';
            increment(this.errors, code);
            if (!stopped) setTimeout(start, 300);
          },
          complete: () => {
            if (!stopped) setTimeout(start, 300);
          },
        },
      );
    };
    start();
    this.#stops.push(() => {
      stopped = true;
      unsubscribe();
    });
  }

  followOrder(client: Client, id: string): void {
    this.orderSubscriptions++;
    this.#follow(client, ORDER_UPDATED, { id }, (data) => this.#see(`order ${id}`, data.orderUpdated.version));
  }

  followSkus(client: Client, skus: readonly string[]): void {
    this.skuSubscriptions += skus.length;
    this.#follow(client, STOCK_CHANGED, { skus }, (data) => this.#see(`sku ${data.stockLevelChanged.sku}`, data.stockLevelChanged.version));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const stop of this.#stops) stop();
    await Promise.allSettled(this.#clients.map(async (c) => c.dispose()));
  }
}

/** POSTs placeOrder with a timeout; returns the order or the code of the refusal. */
async function placeOnce(gatewayUrl: string, token: string, input: unknown): Promise<{ order?: { id: string }; code?: string }> {
  try {
    const response = await fetch(gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: PLACE_ORDER, variables: { input } }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      return { code: `HTTP_${response.status}` };
    }
    if (body.data?.placeOrder?.id) return { order: body.data.placeOrder };
    return { code: String(body.errors?.[0]?.extensions?.code ?? `HTTP_${response.status}`) };
  } catch (error) {
    const name = (error as Error).name;
    return { code: name === 'TimeoutError' || name === 'AbortError' ? 'CLIENT_TIMEOUT' : 'CONNECTION_FAILED' };
  }
}

/** The infrastructure and processes of one run. */
interface Platform {
  readonly postgres: TestPostgresServer;
  readonly redis: TestRedisServer;
  readonly kafka: TestKafkaBroker;
  readonly stack: ProcessStack;
}

async function injectFault(platform: Platform, fault: FaultName, options: ChaosOptions): Promise<void> {
  const { stack } = platform;
  if (fault === 'kill gateway') {
    await stack.killChild(stack.gateway!);
    await stack.restartChild(stack.gateway!);
  } else if (fault.startsWith('kill ') && fault !== 'kill kafka') {
    const name = fault.slice(5) as ServiceName;
    await stack.kill(name);
    await stack.restart(name);
  } else if (fault === 'kill kafka') {
    await platform.kafka.kill();
    await platform.kafka.restart();
  } else if (fault === 'restart postgres') {
    await platform.postgres.restart();
  } else if (fault === 'restart redis') {
    await platform.redis.restart();
  } else {
    const child = stack.children[options.stallTarget].process;
    child.kill('SIGSTOP');
    await sleep(options.stallMs);
    child.kill('SIGCONT');
  }
}

/** The label of a fault in the report (the stall names its target and length). */
function faultLabel(fault: FaultName, options: ChaosOptions): string {
  return fault === 'stall' ? `stall ${options.stallTarget} ${Math.round(options.stallMs / 1000)} s` : fault;
}

/** Rejects with the signal's reason once it is aborted. */
function abortion(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/**
 * Runs the suite: starts scratch PostgreSQL, Redis and Kafka and the platform as child processes,
 * loads it, injects the faults, checks and reports. Everything it started is stopped again.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const began = Date.now();
  log('starting scratch PostgreSQL, Redis and Kafka');
  const [postgres, redis, kafka] = await Promise.all([TestPostgresServer.start(), TestRedisServer.start(), TestKafkaBroker.start()]);
  let stack: ProcessStack | undefined;
  let followers: LiveFollowers | undefined;
  try {
    log(`PostgreSQL ${postgres.url} (log: ${postgres.logFile}), Redis ${redis.url}, Kafka ${kafka.broker}; starting the services and the gateway`);
    stack = await startProcessStack(
      {
        DATABASE_URL: postgres.url,
        REDIS_URL: redis.url,
        KAFKA_BROKERS: kafka.broker,
        // The door stays as in production: it refuses placeOrder while the saga lags.
        ORDER_ADMISSION_MAX_LAG_MS: '2000',
        PAYMENT_CIRCUIT_MIN_CALLS: '20',
        LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? 'fatal',
      },
      // Every service: the gateway's /readyz asks each subgraph of the supergraph.
      { gatewayProcess: true, services: SERVICE_NAMES },
    );
    followers = new LiveFollowers(stack.gatewayUrl);
    const driving = drive({ postgres, redis, kafka, stack }, options, followers, began);
    if (!options.signal) return await driving;
    // The drive is left to fail on its own once its servers are gone; only the clean-up matters.
    driving.catch(() => undefined);
    return await Promise.race([driving, abortion(options.signal)]);
  } finally {
    await followers?.close();
    await stack?.close().catch(() => undefined);
    await Promise.allSettled([kafka.close(), redis.stop(), postgres.close()]);
  }
}

async function drive(platform: Platform, options: ChaosOptions, followers: LiveFollowers, began: number): Promise<ChaosReport> {
  const { stack } = platform;
  const { log } = options;
  const failures: string[] = [];
  const skus = Array.from({ length: options.skus }, (_, i) => `CHAOS-${i + 1}`);
  const initialOnHand = 1_000_000;
  await seedSaga(
    stack,
    skus.map((sku) => ({ sku, onHand: initialOnHand, priceAmount: 500 + 100 * skus.indexOf(sku) })),
    60_000,
  );

  followers.followSkus(followers.client(null), skus);

  const placed: Placed[] = [];
  const refusals: Refusal[] = [];
  let abandoned = 0;
  let stopping = false;
  const customers = await Promise.all(
    Array.from({ length: options.customers }, async (_, i) => {
      const token = await stack.token(`chaos-customer-${i + 1}`, ['customer']);
      return { token, live: followers.client(token) };
    }),
  );
  const loops = customers.map(async ({ token, live }) => {
    while (!stopping) {
      const lines = 1 + randomInt(2);
      const chosen = [...skus].sort(() => Math.random() - 0.5).slice(0, lines);
      const input = orderInput(
        chosen.map((sku) => ({ sku, quantity: 1 + randomInt(3) })),
        Math.random() < options.declineShare ? 'tok_decline' : 'tok_visa',
      );
      const firstTry = Date.now();
      for (;;) {
        // The same idempotency key on every attempt: a retry after a lost answer never orders twice.
        const sentAt = Date.now();
        const { order, code } = await placeOnce(stack.gatewayUrl, token, input);
        if (order) {
          placed.push({ id: order.id, sentAt, acceptedAt: Date.now() });
          followers.followOrder(live, order.id);
          break;
        }
        refusals.push({ at: Date.now(), code: code! });
        if (Date.now() - firstTry > GIVE_UP_MS) {
          abandoned++;
          break;
        }
        await sleep(RETRY_MS);
      }
      await sleep(options.thinkMs);
    }
  });

  const orderDb = () => stack.em('order');
  /** When an order sent at or after `since` was first CONFIRMED (ms since the epoch), if one was. */
  const firstConfirmedSince = async (since: number): Promise<number | undefined> => {
    const ids = placed.filter((p) => p.sentAt >= since).map((p) => p.id);
    if (!ids.length) return undefined;
    const rows = await orderDb().execute<{ at: Date | null }[]>(`select min(at) as at from order_transition where status = 'CONFIRMED' and order_id in (?)`, [
      ids,
    ]);
    return rows[0]?.at ? new Date(rows[0].at).getTime() : undefined;
  };
  /** Waits until `count` orders sent at or after `since` are CONFIRMED. */
  const confirmedSince = (since: number, count: number, timeoutMs: number) =>
    waitFor(
      async () => {
        const ids = placed.filter((p) => p.sentAt >= since).map((p) => p.id);
        if (ids.length < count) return undefined;
        const rows = await orderDb().execute<{ n: number }[]>(`select count(*)::int as n from orders where status = 'CONFIRMED' and id in (?)`, [ids]);
        return rows[0].n >= count ? true : undefined;
      },
      `${count} orders confirmed`,
      timeoutMs,
      undefined,
      200,
    );

  const windows: { fault: string; start: number; injectedMs: number; acceptingAgainMs: number | null; flowingAgainMs: number | null }[] = [];
  try {
    log(`load: ${options.customers} customers; waiting for ${options.settleOrders} confirmed orders before the first fault`);
    const warmStart = Date.now();
    await confirmedSince(warmStart, options.settleOrders, 120_000);
    windows.push({ fault: 'steady (no fault)', start: warmStart, injectedMs: 0, acceptingAgainMs: 0, flowingAgainMs: null });
    const faults = options.faults ?? FAULTS;
    for (let round = 0; round < options.rounds; round++) {
      for (const fault of faults) {
        const label = faultLabel(fault, options);
        const start = Date.now();
        log(`fault: ${label}`);
        await injectFault(platform, fault, options);
        const injectedMs = Date.now() - start;
        let flowingAt: number | undefined;
        try {
          flowingAt = await waitFor(() => firstConfirmedSince(start), `orders to flow again after ${label}`, options.recoveryTimeoutMs, undefined, 250);
        } catch (error) {
          failures.push(`${label}: ${(error as Error).message}`);
        }
        const acceptedAgain = placed.find((p) => p.sentAt >= start)?.acceptedAt;
        windows.push({
          fault: label,
          start,
          injectedMs,
          acceptingAgainMs: acceptedAgain !== undefined ? acceptedAgain - start : null,
          flowingAgainMs: flowingAt !== undefined ? Math.max(0, flowingAt - start) : null,
        });
        log(`  over after ${injectedMs} ms; orders flowing again after ${flowingAt !== undefined ? `${flowingAt - start} ms` : 'never'}`);
        if (flowingAt !== undefined)
          await confirmedSince(Date.now(), options.settleOrders, options.recoveryTimeoutMs).catch((error) => failures.push(`${label}: ${error.message}`));
      }
    }
  } finally {
    stopping = true;
    log("load stopped; waiting for the customers' last attempts");
    await Promise.all(loops);
  }

  // ---- Everything settles: every order terminal, every outbox drained, every shipment created.
  log(`${placed.length} orders accepted; waiting for every order to settle and every outbox to drain`);
  const statuses: Record<string, number> = {};
  const countStatuses = async () => {
    const rows = await orderDb().execute<{ status: string; n: number }[]>('select status, count(*)::int as n from orders group by status');
    for (const key of Object.keys(statuses)) delete statuses[key];
    for (const row of rows) statuses[row.status] = row.n;
    return statuses;
  };
  await waitFor(
    async () => {
      const counts = await countStatuses();
      return Object.keys(counts).every((s) => TERMINAL.has(s)) ? true : undefined;
    },
    'every order to reach a terminal status',
    FINAL_TIMEOUT_MS,
    () => statuses,
    500,
  ).catch((error) => failures.push(error.message));
  const unpublished: Record<string, number> = {};
  await waitFor(
    async () => {
      for (const name of stack.services) unpublished[name] = await outboxBacklog(stack.em(name));
      return Object.values(unpublished).every((n) => n === 0) ? true : undefined;
    },
    'every outbox to be drained',
    60_000,
    () => unpublished,
    500,
  ).catch((error) => failures.push(error.message));
  const confirmedIds = async () => (await orderDb().execute<{ id: string }[]>(`select id from orders where status = 'CONFIRMED'`)).map((r) => r.id);
  await waitFor(
    async () => {
      const confirmed = await confirmedIds();
      const rows = await stack.em('shipment').execute<{ n: number }[]>('select count(*)::int as n from shipment');
      return rows[0].n >= confirmed.length ? true : undefined;
    },
    'a shipment for every confirmed order',
    60_000,
    undefined,
    500,
  ).catch((error) => failures.push(error.message));
  // Every consumer has handled everything too (inventory's commit of the last OrderConfirmed may
  // come after its shipment): the checks below read a system at rest.
  await drainSystem(stack, { timeoutMs: 60_000 }).catch((error) => failures.push(error.message));
  await countStatuses();

  // ---- Nothing lost: every accepted order is in the database.
  const known = new Set((await orderDb().execute<{ id: string }[]>('select id from orders')).map((r) => r.id));
  const lost = placed.filter((p) => !known.has(p.id));
  if (lost.length)
    failures.push(
      `${lost.length} accepted orders are not in the order database: ${lost
        .slice(0, 5)
        .map((p) => p.id)
        .join(', ')}`,
    );

  // ---- Stock conserved per sku.
  const soldRows = await orderDb().execute<{ sku: string; sold: number }[]>(
    `select i.sku, sum(i.quantity)::int as sold from order_item i join orders o on o.id = i.order_id where o.status in ('CONFIRMED', 'SHIPPED', 'DELIVERED') group by i.sku`,
  );
  const sold = new Map(soldRows.map((r) => [r.sku, r.sold]));
  const stockRows = await stack
    .em('inventory')
    .execute<{ sku: string; on_hand: number; reserved: number; version: number }[]>('select sku, on_hand, reserved, version from stock where sku in (?)', [
      skus,
    ]);
  for (const row of stockRows) {
    const soldUnits = sold.get(row.sku) ?? 0;
    if (row.reserved !== 0) failures.push(`${row.sku}: ${row.reserved} units still reserved with no order in flight`);
    if (row.on_hand + soldUnits !== initialOnHand) {
      failures.push(`${row.sku}: stock not conserved: on hand ${row.on_hand} + sold ${soldUnits} != ${initialOnHand}`);
    }
  }

  // ---- Nothing applied twice, and every participant agrees with the orders.
  const confirmed = new Set(await confirmedIds());
  const twice = await orderDb().execute<{ event_id: string }[]>(
    'select event_id from order_transition where event_id is not null group by event_id having count(*) > 1',
  );
  if (twice.length) failures.push(`${twice.length} events applied twice to an order's timeline`);
  const steps = await orderDb().execute<{ order_id: string }[]>(
    `select order_id from order_transition where event_type in ('StockReserved', 'StockReservationFailed', 'PaymentAuthorized') group by order_id, event_type having count(*) > 1`,
  );
  if (steps.length) failures.push(`${steps.length} saga steps taken twice for one order`);
  const lines = await orderDb().execute<{ n: number }[]>(
    `select count(*)::int as n from order_item i join orders o on o.id = i.order_id where o.status = 'CONFIRMED'`,
  );
  const reservations = await stack
    .em('inventory')
    .execute<{ status: string; n: number }[]>('select status, count(*)::int as n from reservation group by status');
  const reservationsBy = Object.fromEntries(reservations.map((r) => [r.status, r.n]));
  if ((reservationsBy.COMMITTED ?? 0) !== lines[0].n)
    failures.push(`${reservationsBy.COMMITTED ?? 0} committed reservations for ${lines[0].n} confirmed order lines`);
  if (reservationsBy.RESERVED) failures.push(`${reservationsBy.RESERVED} reservations still held`);
  const authorised = (await stack.em('payment').execute<{ order_id: string }[]>(`select order_id from payment where status = 'AUTHORIZED'`)).map(
    (r) => r.order_id,
  );
  const unpaid = [...confirmed].filter((id) => !authorised.includes(id));
  const unrefunded = authorised.filter((id) => !confirmed.has(id));
  if (unpaid.length) failures.push(`${unpaid.length} confirmed orders without an authorised payment`);
  if (unrefunded.length) failures.push(`${unrefunded.length} payments authorised for orders that are not confirmed (never refunded)`);
  const shipments = await stack.em('shipment').execute<{ order_id: string }[]>(`select order_id from shipment where status <> 'CANCELLED'`);
  if (shipments.length !== confirmed.size || shipments.some((s) => !confirmed.has(s.order_id))) {
    failures.push(`${shipments.length} shipments for ${confirmed.size} confirmed orders`);
  }
  for (const name of stack.services) {
    const topic = dlqTopic(eventsTopic(name));
    if (!(await stack.kafka.hasTopic(topic))) continue;
    const offsets = await stack.kafka.topicOffsets(topic);
    const letters = offsets.reduce((sum, p) => sum + Number(BigInt(p.high) - BigInt(p.low)), 0);
    if (letters) failures.push(`${letters} messages dead-lettered on ${topic}`);
  }

  // ---- Every live subscriber ends at the final version of what it follows.
  const finalVersions = new Map<string, number>();
  for (const row of stockRows) finalVersions.set(`sku ${row.sku}`, row.version);
  const orderVersions = await orderDb().execute<{ id: string; version: number }[]>('select id, version from orders where id in (?)', [placed.map((p) => p.id)]);
  for (const row of orderVersions) finalVersions.set(`order ${row.id}`, row.version);
  const stale = () => [...finalVersions].filter(([key, version]) => followers.lastVersion.get(key) !== version);
  await waitFor(() => (stale().length === 0 ? true : undefined), 'every live subscriber to reach the final version', LIVE_TIMEOUT_MS, undefined, 250).catch(
    () => {
      const behind = stale();
      failures.push(
        `${behind.length} live subscribers behind: ${behind
          .slice(0, 5)
          .map(([key, v]) => `${key} saw ${followers.lastVersion.get(key) ?? 'nothing'}, final ${v}`)
          .join('; ')}`,
      );
    },
  );
  if (followers.regressions.length) failures.push(`live versions went backwards: ${followers.regressions.slice(0, 5).join('; ')}`);

  // ---- Per window: what customers were told, and why orders were cancelled.
  const causes = await orderDb().execute<{ id: string; cause: string }[]>(
    `select distinct on (t.order_id) t.order_id as id, concat_ws(': ', t.event_type, left(t.reason, 60)) as cause
       from order_transition t join orders o on o.id = t.order_id
      where o.status in ('REJECTED', 'CANCELLED') and t.status = o.status
      order by t.order_id, t.at, t.id`,
  );
  const causeOf = new Map(causes.map((c) => [c.id, c.cause || 'unknown']));
  const reports: FaultReport[] = windows.map((w, i) => {
    const end = windows[i + 1]?.start ?? Infinity;
    const inWindow = (at: number) => at >= w.start && at < end;
    const refused: Record<string, number> = {};
    for (const r of refusals) if (inWindow(r.at)) increment(refused, r.code);
    const cancelled: Record<string, number> = {};
    const accepted = placed.filter((p) => inWindow(p.acceptedAt));
    for (const p of accepted) {
      const cause = causeOf.get(p.id);
      if (cause) increment(cancelled, cause);
    }
    return {
      fault: w.fault,
      injectedMs: w.injectedMs,
      acceptingAgainMs: w.acceptingAgainMs,
      flowingAgainMs: w.flowingAgainMs,
      accepted: accepted.length,
      refused,
      cancelled,
    };
  });
  return {
    options: { ...options, log: undefined } as Omit<ChaosOptions, 'log'>,
    durationMs: Date.now() - began,
    statuses,
    accepted: placed.length,
    abandoned,
    windows: reports,
    live: {
      orderSubscriptions: followers.orderSubscriptions,
      skuSubscriptions: followers.skuSubscriptions,
      errors: followers.errors,
      reconnects: followers.reconnects,
    },
    failures,
  };
}

/** The report as text: the checks, then one line per fault. */
export function formatReport(report: ChaosReport): string {
  const seconds = (ms: number | null) => (ms === null ? 'never' : `${(ms / 1000).toFixed(1)} s`);
  const counts = (c: Record<string, number>) =>
    Object.entries(c)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '-';
  const lines = [
    `chaos: ${report.accepted} orders accepted in ${seconds(report.durationMs)} (${counts(report.statuses)}); ${report.abandoned} abandoned`,
    `live: ${report.live.orderSubscriptions} order and ${report.live.skuSubscriptions} sku subscriptions; ${report.live.reconnects} reconnects; errors: ${counts(report.live.errors)}`,
    '',
    '| fault | injected for | accepting again after | orders flowing again after | accepted | refused (codes) | rejected or cancelled (cause) |',
    '|---|---:|---:|---:|---:|---|---|',
    ...report.windows.map((w, i) =>
      i === 0
        ? `| ${w.fault} | - | - | - | ${w.accepted} | ${counts(w.refused)} | ${counts(w.cancelled)} |`
        : `| ${w.fault} | ${seconds(w.injectedMs)} | ${seconds(w.acceptingAgainMs)} | ${seconds(w.flowingAgainMs)} | ${w.accepted} | ${counts(w.refused)} | ${counts(w.cancelled)} |`,
    ),
    '',
    report.failures.length
      ? `FAILED checks:\n${report.failures.map((f) => `  - ${f}`).join('\n')}`
      : 'all checks passed: every order terminal, stock conserved, nothing applied twice, outboxes drained, no dead letters, every live subscriber at the final version',
  ];
  return lines.join('\n');
}
