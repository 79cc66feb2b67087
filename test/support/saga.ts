/**
 * Shared helpers of the order-saga end-to-end tests (test/e2e/saga-*.test.ts): start and seed a
 * stack (in-process, or as child processes for crash tests), place orders through the gateway,
 * poll orders and stock, read and write Kafka topics, count rows, and check stock conservation.
 *
 * Everything here talks to the system the way a client or an operator would: GraphQL through the
 * gateway, Kafka topics, and plain SQL reads of the service databases. Nothing is stubbed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  type AnyEventEnvelope,
  type Config,
  type EntityManager,
  type IncomingMessage,
  type KafkaClient,
  type OpenRuntime,
  type Role,
  type ServiceModule,
  type ServiceName,
  type ServiceRole,
  REPO_ROOT,
  SERVICE_NAMES,
  openRuntime,
  signToken,
} from '@swiftcart/platform';
import { dropDatabases, ensureDatabases, freePort } from '../../scripts/infra.ts';

import { seedProducts, type SeedProduct } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { seedCatalogue } from '../../scripts/seed.ts';
import {
  type GraphQLResult,
  type TestStack,
  TEST_RATE_LIMITS,
  childServiceEnv,
  clearRedisPrefix,
  isolatedConfig,
  loadServiceModule,
  postGraphQL,
  startStack,
} from './stack.ts';
import { type DrainOptions, drain, drainScopeOfSystem } from './drain.ts';
import { waitFor } from './wait.ts';

// ---------------------------------------------------------------------------------------------
// Small utilities

/**
 * A fixed pause: for load generators only (a customer's think time, a retry's pause, how long a
 * fault lasts), never to wait for something to happen (use {@link waitFor}) or to see that nothing
 * else happens (use {@link drainSystem}).
 */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export { waitFor };

/**
 * The drain barrier (./drain.ts) for a saga system: waits until the outboxes of `services` are
 * empty and every consumer group under its prefix (services, taps) has handled everything.
 */
export function drainSystem(system: SagaSystem, options: DrainOptions = {}, services: readonly ServiceName[] = system.services): Promise<void> {
  return drain(drainScopeOfSystem(system, services), options);
}

/** Runs `work` over `items` with at most `concurrency` in flight; results keep the items' order. */
export async function pool<T, R>(items: readonly T[], concurrency: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  });
  await Promise.all(lanes);
  return results;
}

// ---------------------------------------------------------------------------------------------
// What the tests talk to: an in-process stack or child processes behind an in-process gateway

/** The part of a running system the saga helpers need, whichever way it runs. */
export interface SagaSystem {
  readonly config: Config;
  graphql<T = any>(query: string, options?: { variables?: Record<string, unknown>; token?: string | null }): Promise<GraphQLResult<T>>;
  token(sub: string, roles: readonly Role[]): Promise<string>;
  /** A fresh EntityManager on a service's own database (plain SQL reads). */
  em(service: ServiceName): EntityManager;
  /** A Kafka client under the system's topic prefix. */
  readonly kafka: KafkaClient;
  /** The services it runs. */
  readonly services: readonly ServiceName[];
}

/** Wraps an in-process {@link TestStack}. */
export function systemOf(stack: TestStack): SagaSystem {
  return {
    config: stack.config,
    graphql: (query, options) => stack.graphql(query, options),
    token: (sub, roles) => stack.token(sub, roles),
    em: (service) => {
      const running = stack.services[service];
      if (!running) throw new Error(`the stack does not run ${service}`);
      return running.runtime.db.fork();
    },
    get kafka() {
      return (stack.services.order ?? Object.values(stack.services)[0])!.runtime.kafka;
    },
    services: SERVICE_NAMES.filter((name) => stack.services[name]),
  };
}

/** Saga-friendly defaults: a fast mock provider. Tests override what they need. */
export const FAST_SAGA_ENV: NodeJS.ProcessEnv = {
  PAYMENT_PROVIDER_LATENCY_MS: '5',
  PAYMENT_TIMEOUT_MS: '1000',
  PAYMENT_RETRY_ATTEMPTS: '2',
  PAYMENT_RETRY_BASE_MS: '20',
  // The breaker needs far more attempts than any saga test makes: tests of the breaker set their own.
  PAYMENT_CIRCUIT_MIN_CALLS: '1000',
  PAYMENT_CIRCUIT_RESET_MS: '1000',
  ORDER_SWEEP_INTERVAL_MS: '200',
  // Bursts of orders are what these tests are about: admission control has a test of its own.
  ORDER_ADMISSION_MAX_LAG_MS: '0',
};

/**
 * The services an order's saga runs through. The customer, cart, notification and analytics
 * services only listen to it (or call it): a test that needs them asks for them, and the others do
 * not pay for four more services' consumers and pollers on two cores.
 */
export const SAGA_SERVICES: readonly ServiceName[] = ['product', 'inventory', 'order', 'payment', 'shipment'];

/** Starts `services` (the saga's by default) and the gateway in-process; `env` reaches them through the stack's configuration. */
export async function startSagaStack(env: NodeJS.ProcessEnv = {}, services: readonly ServiceName[] = SAGA_SERVICES): Promise<TestStack> {
  return startStack({ services, gateway: true, env: { ...FAST_SAGA_ENV, ...env } });
}

// ---------------------------------------------------------------------------------------------
// Seeding

/** One sku to seed: a product (priced) with stock. */
export interface SeedSku {
  readonly sku: string;
  readonly onHand: number;
  /** Minor units (default 1000). */
  readonly priceAmount?: number;
  /** Default `Saga <sku>`. */
  readonly name?: string;
}

/**
 * The first `count` products of the demo catalogue (scripts/seed.ts: SKU-0001, "Compact Headphones,
 * Orange", ...) with their prices and stock, for tests whose pages or screenshots show what a user
 * of `npm start` sees.
 */
export function demoSkus(count: number): SeedSku[] {
  const { products, stock } = seedCatalogue(count);
  return products.map((product, index) => ({ sku: product.sku, name: product.name, priceAmount: product.priceAmount, onHand: stock[index].onHand }));
}

/**
 * Seeds products (which publishes ProductCreated through the product outbox) and their stock, then
 * waits until the order service's price replica (`catalogue_price`) has every sku.
 */
export async function seedSaga(system: SagaSystem, skus: readonly SeedSku[], timeoutMs = 20_000): Promise<void> {
  const products: SeedProduct[] = skus.map((s) => ({
    sku: s.sku,
    name: s.name ?? `Saga ${s.sku}`,
    description: `saga test product ${s.sku}`,
    priceAmount: s.priceAmount ?? 1000,
    currency: 'EUR',
  }));
  await seedProducts(system.em('product'), products);
  await seedStock(
    system.em('inventory'),
    skus.map((s) => ({ sku: s.sku, onHand: s.onHand })),
  );
  await waitForReplica(
    system,
    skus.map((s) => s.sku),
    timeoutMs,
  );
}

/** A started saga stack with its skus seeded, and what its tests use of it. */
export interface SeededSaga {
  readonly stack: TestStack;
  readonly system: SagaSystem;
  /** A bearer token of the `admin` role (subject `root`). */
  readonly admin: string;
}

/**
 * {@link startSagaStack} then {@link seedSaga}: the usual `before` of a saga suite. A stack whose
 * seeding fails is closed before the error reaches the suite.
 */
export async function startSeededSaga(
  skus: readonly SeedSku[],
  env: NodeJS.ProcessEnv = {},
  services: readonly ServiceName[] = SAGA_SERVICES,
): Promise<SeededSaga> {
  const stack = await startSagaStack(env, services);
  try {
    const system = systemOf(stack);
    const admin = await stack.token('root', ['admin']);
    await seedSaga(system, skus);
    return { stack, system, admin };
  } catch (error) {
    await stack.close();
    throw error;
  }
}

/** Waits until a service's `catalogue_price` replica (the order service's by default) holds every one of `skus`. */
export async function waitForReplica(system: SagaSystem, skus: readonly string[], timeoutMs = 20_000, service: ServiceName = 'order'): Promise<void> {
  let seen: string[] = [];
  await waitFor(
    async () => {
      const rows = await system.em(service).execute<{ sku: string }[]>('select sku from catalogue_price where sku in (?)', [[...skus]]);
      seen = rows.map((r) => r.sku);
      return seen.length === new Set(skus).size ? true : undefined;
    },
    `the ${service} service's price replica to hold ${skus.join(', ')}`,
    timeoutMs,
    () => ({ replicated: seen }),
    100,
  );
}

// ---------------------------------------------------------------------------------------------
// Orders

export type PaymentMethod = 'tok_visa' | 'tok_decline' | 'tok_timeout' | (string & {});

export interface ItemInput {
  readonly sku: string;
  readonly quantity: number;
}

export const SHIPPING_ADDRESS = Object.freeze({ name: 'Ada Lovelace', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' });

export const ORDER_FIELDS = `
  id status customerId paymentMethod
  total { amount currency }
  items { sku quantity unitPrice { amount currency } lineTotal { amount } }
  timeline { status at eventType eventId reason }
  createdAt updatedAt`;

export const PLACE_ORDER = `mutation PlaceOrder($input: PlaceOrderInput!) { placeOrder(input: $input) { ${ORDER_FIELDS} } }`;
export const CANCEL_ORDER = `mutation CancelOrder($id: ID!, $reason: String) { cancelOrder(id: $id, reason: $reason) { ${ORDER_FIELDS} } }`;
export const READ_ORDER = `query Order($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;
export const READ_ORDER_FULL = `query Order($id: ID!) { order(id: $id) {
  ${ORDER_FIELDS}
  payment { status amount { amount currency } method attempts failureReason }
  shipment { status carrier trackingNumber }
} }`;

/** The input of `placeOrder`. */
export function orderInput(items: readonly ItemInput[], method: PaymentMethod, idempotencyKey: string = randomUUID()) {
  return { idempotencyKey, items, shippingAddress: SHIPPING_ADDRESS, paymentMethod: method };
}

/** Sends `placeOrder` and returns the raw result (for error cases). */
export function tryPlaceOrder(
  system: SagaSystem,
  token: string | null,
  items: readonly ItemInput[],
  method: PaymentMethod,
  idempotencyKey?: string,
): Promise<GraphQLResult> {
  return system.graphql(PLACE_ORDER, { token, variables: { input: orderInput(items, method, idempotencyKey) } });
}

/** Places an order and returns it; fails the test when the mutation errs. */
export async function placeOrder(system: SagaSystem, token: string, items: readonly ItemInput[], method: PaymentMethod, idempotencyKey?: string): Promise<any> {
  const result = await tryPlaceOrder(system, token, items, method, idempotencyKey);
  assert.equal(result.errors, undefined, `placeOrder failed: ${JSON.stringify(result.errors)}`);
  assert.ok(result.data?.placeOrder?.id, `placeOrder returned no order: ${JSON.stringify(result)}`);
  return result.data.placeOrder;
}

/** Reads an order with `query` (default: everything incl. payment and shipment). */
export async function readOrder(system: SagaSystem, token: string, orderId: string, query = READ_ORDER_FULL): Promise<any> {
  const result = await system.graphql(query, { token, variables: { id: orderId } });
  if (result.errors) throw new Error(`order(${orderId}) failed: ${JSON.stringify(result.errors)}`);
  return result.data.order;
}

/** Polls `order(id) { status }` until it is one of `statuses`; returns the full order. */
export async function waitForStatus(system: SagaSystem, token: string, orderId: string, statuses: readonly string[], timeoutMs = 15_000): Promise<any> {
  let last: any;
  await waitFor(
    async () => {
      last = await readOrder(system, token, orderId, `query Order($id: ID!) { order(id: $id) { status } }`);
      return statuses.includes(last?.status) ? true : undefined;
    },
    `order ${orderId} to reach ${statuses.join('|')}`,
    timeoutMs,
    async () => readOrder(system, token, orderId).catch((e) => String(e)),
  );
  return readOrder(system, token, orderId);
}

/** Polls the full order until `check` holds; returns it. */
export async function waitForOrder(
  system: SagaSystem,
  token: string,
  orderId: string,
  what: string,
  check: (order: any) => boolean,
  timeoutMs = 15_000,
): Promise<any> {
  let last: any;
  return waitFor(
    async () => {
      last = await readOrder(system, token, orderId);
      return last && check(last) ? last : undefined;
    },
    `order ${orderId}: ${what}`,
    timeoutMs,
    () => last,
  );
}

/** Statuses at which an order's saga has settled for these tests (CONFIRMED waits only for an admin). */
export const SETTLED = ['CONFIRMED', 'REJECTED', 'CANCELLED', 'SHIPPED', 'DELIVERED'] as const;

/**
 * The status of many orders, as an admin, in few requests (aliases, `chunk` per request: at most the
 * gateway's alias limit, GRAPHQL_MAX_ALIASES, 15 by default). An order
 * whose read fails (a subgraph restarting) is absent from the map.
 */
export async function statusesOf(system: SagaSystem, adminToken: string, ids: readonly string[], chunk = 15): Promise<Map<string, string>> {
  const statuses = new Map<string, string>();
  for (let i = 0; i < ids.length; i += chunk) {
    const part = ids.slice(i, i + chunk);
    const query = `{ ${part.map((id, j) => `o${j}: order(id: "${id}") { id status }`).join(' ')} }`;
    const result = await system.graphql(query, { token: adminToken });
    for (const value of Object.values(result.data ?? {}) as ({ id: string; status: string } | null)[]) {
      if (value) statuses.set(value.id, value.status);
    }
  }
  return statuses;
}

/**
 * For tests whose customers keep placing: waits until `accepted` (which they append to) holds
 * `count` orders from index `from` on, then until those orders are all CONFIRMED.
 */
export async function waitForConfirmedAt(
  system: SagaSystem,
  adminToken: string,
  accepted: readonly string[],
  from: number,
  count: number,
  timeoutMs: number,
): Promise<void> {
  await waitFor(() => (accepted.length >= from + count ? true : undefined), `${count} orders accepted after the first ${from}`, timeoutMs);
  await waitForAll(system, adminToken, accepted.slice(from, from + count), ['CONFIRMED'], timeoutMs);
}

/** Waits until every order is in one of `statuses`; returns their statuses. */
export async function waitForAll(
  system: SagaSystem,
  adminToken: string,
  ids: readonly string[],
  statuses: readonly string[] = SETTLED,
  timeoutMs = 30_000,
): Promise<Map<string, string>> {
  let last = new Map<string, string>();
  return waitFor(
    async () => {
      last = await statusesOf(system, adminToken, ids);
      return ids.every((id) => statuses.includes(last.get(id) as string)) ? last : undefined;
    },
    `${ids.length} orders to reach ${statuses.join('|')}`,
    timeoutMs,
    () => countBy([...ids].map((id) => last.get(id) ?? '(unreadable)')),
    250,
  );
}

/** How often each value occurs. */
export function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** The statuses a timeline passes through, with consecutive repeats (timeline-only entries) folded. */
export function distinctStatuses(timeline: readonly { status: string }[]): string[] {
  const statuses: string[] = [];
  for (const entry of timeline) if (statuses.at(-1) !== entry.status) statuses.push(entry.status);
  return statuses;
}

/** The timeline entries that changed the status (the first entry and every change after it). */
export function statusChanges(timeline: readonly any[]): any[] {
  return timeline.filter((entry, i) => i === 0 || timeline[i - 1].status !== entry.status);
}

// ---------------------------------------------------------------------------------------------
// Stock

export interface StockFigures {
  readonly onHand: number;
  readonly reserved: number;
  readonly available: number;
}

/** The stock of `sku` through the gateway. */
export async function stockOf(system: SagaSystem, sku: string): Promise<StockFigures> {
  const result = await system.graphql(`query Stock($sku: ID!) { stockLevel(sku: $sku) { onHand reserved available } }`, { variables: { sku } });
  if (result.errors) throw new Error(`stockLevel(${sku}) failed: ${JSON.stringify(result.errors)}`);
  return result.data.stockLevel;
}

/** Waits until the stock of `sku` equals `expected` (figures settle asynchronously after a status change). */
export async function waitForStock(system: SagaSystem, sku: string, expected: Partial<StockFigures>, timeoutMs = 15_000): Promise<StockFigures> {
  let last: StockFigures | undefined;
  return waitFor(
    async () => {
      last = await stockOf(system, sku);
      return Object.entries(expected).every(([k, v]) => last![k as keyof StockFigures] === v) ? last : undefined;
    },
    `stock of ${sku} to be ${JSON.stringify(expected)}`,
    timeoutMs,
    () => last,
  );
}

/**
 * Conservation of one sku: what was on hand at the start is what is still on hand (available plus
 * reserved) plus what was sold (units that left the warehouse with a committed reservation).
 */
export function assertConserved(sku: string, initialOnHand: number, stock: StockFigures, soldUnits: number): void {
  assert.ok(stock.onHand >= 0 && stock.reserved >= 0 && stock.available >= 0, `${sku}: negative figure ${JSON.stringify(stock)}`);
  assert.ok(stock.reserved <= stock.onHand, `${sku}: more reserved than on hand ${JSON.stringify(stock)}`);
  assert.equal(stock.available + stock.reserved, stock.onHand, `${sku}: available + reserved must be onHand ${JSON.stringify(stock)}`);
  assert.equal(
    stock.available + stock.reserved + soldUnits,
    initialOnHand,
    `${sku}: conservation broken: available ${stock.available} + reserved ${stock.reserved} + sold ${soldUnits} != initial onHand ${initialOnHand}`,
  );
}

// ---------------------------------------------------------------------------------------------
// Rows and events

/**
 * Asserts that no event was applied twice and that every participant agrees with the orders: one
 * committed reservation per confirmed order and line (none left RESERVED or RELEASED), no
 * participant event twice on any timeline, no saga step twice for one order, and exactly one
 * authorised payment and one shipment per confirmed order. For runs where every order was
 * confirmed or rejected for want of stock (nothing cancelled, nothing declined).
 */
export async function assertAppliedOnce(system: SagaSystem, expected: { readonly confirmed: number; readonly linesPerOrder: number }): Promise<void> {
  const { confirmed, linesPerOrder } = expected;
  assert.equal(await countRows(system, 'inventory', 'reservation', `status = 'COMMITTED'`), linesPerOrder * confirmed);
  assert.equal(await countRows(system, 'inventory', 'reservation', `status = 'RESERVED'`), 0);
  assert.equal(await countRows(system, 'inventory', 'reservation', `status = 'RELEASED'`), 0);
  const twice = await system
    .em('order')
    .execute<{ event_id: string; n: number }[]>(
      'select event_id, count(*)::int as n from order_transition where event_id is not null group by event_id having count(*) > 1',
    );
  assert.deepEqual(twice, [], 'a participant event applied twice');
  const steps = await system
    .em('order')
    .execute<{ order_id: string; n: number }[]>(
      `select order_id, count(*)::int as n from order_transition where event_type in ('StockReserved', 'StockReservationFailed', 'PaymentAuthorized') group by order_id, event_type having count(*) > 1`,
    );
  assert.deepEqual(steps, [], 'a saga step taken twice for one order');
  assert.equal(await countRows(system, 'payment', 'payment', `status = 'AUTHORIZED'`), confirmed);
  assert.equal(await countRows(system, 'payment', 'payment'), confirmed, 'no payment for a rejected order');
  assert.equal(await countRows(system, 'shipment', 'shipment'), confirmed);
}

/** `select count(*)` of a table in a service's database (optionally with a where clause). */
export async function countRows(system: SagaSystem, service: ServiceName, table: string, where = 'true', params: unknown[] = []): Promise<number> {
  const rows = await system.em(service).execute<{ n: number }[]>(`select count(*)::int as n from ${table} where ${where}`, params);
  return Number(rows[0].n);
}

/** The rows the order database holds now: orders, lines, timeline entries and outbox events. */
export async function orderDbCounts(system: SagaSystem): Promise<Record<string, number>> {
  return {
    orders: await countRows(system, 'order', 'orders'),
    order_item: await countRows(system, 'order', 'order_item'),
    order_transition: await countRows(system, 'order', 'order_transition'),
    outbox: await countRows(system, 'order', 'outbox'),
  };
}

/**
 * Drains the system (see {@link drainSystem}: no saga in flight any more) and returns the rows the
 * order database holds then, so a before/after count around one request measures that request only.
 */
export async function quiesce(system: SagaSystem, timeoutMs = 30_000): Promise<Record<string, number>> {
  await drainSystem(system, { timeoutMs });
  return orderDbCounts(system);
}

/** The events on a topic (name without prefix), parsed, with their Kafka message. */
export async function readEvents(
  kafka: KafkaClient,
  topic: string,
  filter: (event: AnyEventEnvelope) => boolean = () => true,
): Promise<{ event: AnyEventEnvelope; message: IncomingMessage }[]> {
  const messages = await kafka.readTopic(topic, { timeoutMs: 15_000 });
  const out: { event: AnyEventEnvelope; message: IncomingMessage }[] = [];
  for (const message of messages) {
    let event: AnyEventEnvelope;
    try {
      event = JSON.parse(message.value ?? 'null');
    } catch {
      continue;
    }
    if (event && typeof event === 'object' && filter(event)) out.push({ event, message });
  }
  return out;
}

/** Sums a metric over a service's running consumers (in-process stacks only). */
export function consumerMetric(stack: TestStack, service: ServiceName, metric: 'processed' | 'duplicates' | 'ignored' | 'deadLettered' | 'retried'): number {
  const consumers = stack.services[service]?.consumers ?? [];
  return consumers.reduce((sum, c) => sum + c.metrics[metric], 0);
}

// ---------------------------------------------------------------------------------------------
// Services as child processes (crash tests)

/** One service running as a child process. */
export interface ChildService {
  /** The service, or `gateway` for a gateway started with `gatewayProcess`. */
  readonly name: ServiceName | 'gateway';
  /** How its output lines are tagged: the name, `order#2` for the second of several replicas, `order-worker` for a worker. */
  readonly label: string;
  /** Its SERVICE_ROLE: `all` unless the stack was started with `workers`. */
  readonly role: ServiceRole;
  readonly port: number;
  readonly url: string;
  process: ChildProcess;
  /** The last lines it wrote (stdout and stderr), for failure messages. */
  readonly output: string[];
}

/** Services as child processes, the gateway in this process, and open runtimes for SQL reads and Kafka. */
export interface ProcessStack extends SagaSystem, AsyncDisposable {
  /** The first replica of each service. */
  readonly children: Record<ServiceName, ChildService>;
  /** Every replica of each service (one unless `replicas` was given); api processes when started with `workers`. */
  readonly replicas: Record<ServiceName, ChildService[]>;
  /** With `workers`: each replica's worker process (relay, consumers, sweeper); else empty lists. */
  readonly workers: Record<ServiceName, ChildService[]>;
  readonly gatewayUrl: string;
  /** With `gatewayProcess`: the gateway's child process (`node gateway/src/main.ts`), else null. */
  readonly gateway: ChildService | null;
  /** Signals a service's replica (SIGKILL unless told: no drain, no offset commit) and waits until it is gone. */
  kill(name: ServiceName, signal?: NodeJS.Signals, replica?: number): Promise<void>;
  /** Starts a (killed) replica again on the same port and waits until it answers /readyz. */
  restart(name: ServiceName, replica?: number): Promise<void>;
  /** {@link ProcessStack.kill} for any child process, workers included. */
  killChild(child: ChildService, signal?: NodeJS.Signals): Promise<void>;
  /** {@link ProcessStack.restart} for any child process, workers included. */
  restartChild(child: ChildService): Promise<void>;
  close(): Promise<void>;
}

const MAX_OUTPUT_LINES = 200;

function spawnService(name: ServiceName | 'gateway', port: number, env: NodeJS.ProcessEnv, output: string[], label: string, role: ServiceRole): ChildProcess {
  const main = name === 'gateway' ? path.join(REPO_ROOT, 'gateway', 'src', 'main.ts') : path.join(REPO_ROOT, 'subgraphs', name, 'src', 'main.ts');
  const child = spawn(process.execPath, [main], {
    cwd: REPO_ROOT,
    env: { ...env, SERVICE_ROLE: role, [`${name.toUpperCase()}_PORT`]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(`[${label}] ${line}`);
    if (output.length > MAX_OUTPUT_LINES) output.splice(0, output.length - MAX_OUTPUT_LINES);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return child;
}

// Generous: `npm test` runs two files at a time, and two stacks of ten processes starting on two
// cores have taken more than 30 s (a clean-clone run).
async function waitHealthy(service: ChildService, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    async () => {
      if (service.process.exitCode !== null || service.process.signalCode !== null) {
        throw Object.assign(
          new Error(`${service.name} exited (${service.process.exitCode ?? service.process.signalCode}): ${service.output.slice(-20).join('\n')}`),
          { fatal: true },
        );
      }
      const response = await fetch(`http://127.0.0.1:${service.port}/readyz`);
      return response.ok ? true : undefined;
    },
    `${service.name} on port ${service.port} to be ready`,
    timeoutMs,
    () => service.output.slice(-10),
    100,
  );
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Database connections the children of one {@link startProcessStack} may hold between them, at most. */
const PROCESS_STACK_CONNECTIONS = 72;

/**
 * Starts `services` (the saga's by default) as child processes (`node subgraphs/<name>/src/main.ts`) on ports picked
 * here, isolated like {@link startStack} (own databases, Redis prefix and topic prefix), and the
 * gateway in this process. Migrations are applied here first, so the children never race on them.
 * With `replicas` > 1, each service runs that many processes and the gateway spreads over them.
 * With `workers`, each replica is an api process and a worker process (`npm start -- --workers`).
 * With `gatewayProcess`, the gateway is a child process too (`node gateway/src/main.ts`), which a
 * test may kill and restart like any service; its /readyz asks every subgraph, so every service runs.
 */
export async function startProcessStack(
  env: NodeJS.ProcessEnv = {},
  options: { readonly replicas?: number; readonly workers?: boolean; readonly gatewayProcess?: boolean; readonly services?: readonly ServiceName[] } = {},
): Promise<ProcessStack> {
  const names = options.services ?? SAGA_SERVICES;
  if (options.gatewayProcess && SERVICE_NAMES.some((name) => !names.includes(name))) {
    throw new Error('a gateway process is ready only when every subgraph answers: start it with services: SERVICE_NAMES');
  }
  const replicaCount = options.replicas ?? 1;
  const settings = { ...FAST_SAGA_ENV, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error', ...env };
  const config = isolatedConfig(settings);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...settings,
    // The children require the credential the in-process gateway sends.
    ...childServiceEnv(config),
  };
  // PostgreSQL here takes 100 connections, shared with the test file running beside this one: with
  // replicas or workers, every service's processes at the default pool of 10 could ask for more.
  const processes = names.length * replicaCount * (options.workers ? 2 : 1);
  if (env.DB_POOL_SIZE === undefined && processes > names.length) {
    childEnv.DB_POOL_SIZE = String(Math.max(3, Math.floor(PROCESS_STACK_CONNECTIONS / processes)));
  }
  await ensureDatabases(config, names);
  const runtimes: Partial<Record<ServiceName, OpenRuntime>> = {};
  const modulesByName = new Map<ServiceName, ServiceModule<any, any>>();
  const children = {} as Record<ServiceName, ChildService>;
  const replicas = {} as Record<ServiceName, ChildService[]>;
  const workers = {} as Record<ServiceName, ChildService[]>;
  const everyChild = () => [...Object.values(replicas), ...Object.values(workers), gatewayChild ? [gatewayChild] : []].flat();
  let gateway: { url: string; close(): Promise<void> } | null = null;
  let gatewayChild: ChildService | null = null;
  let gatewayEnv: NodeJS.ProcessEnv = childEnv;
  /** Each service child's environment: the stack's, plus where the services started before it listen (the cart calls order and inventory). */
  const serviceEnvs = new Map<string, NodeJS.ProcessEnv>();
  const envOf = (child: ChildService) => (child.name === 'gateway' ? gatewayEnv : (serviceEnvs.get(child.label) ?? childEnv));
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await gateway?.close().catch(() => undefined);
      // The children's state goes with their databases and prefixed topics: no graceful shutdown needed.
      await Promise.all(
        everyChild().map(async (child) => {
          if (child.process.exitCode === null && child.process.signalCode === null) {
            child.process.kill('SIGKILL');
            await exited(child.process);
          }
        }),
      );
      await Promise.allSettled(Object.values(runtimes).map((r) => r!.close()));
      await dropDatabases(config, names).catch(() => undefined);
      await clearRedisPrefix(config).catch(() => undefined);
    })());
  try {
    // Migrate every database (and create the topics) here, before any child starts.
    await Promise.all(
      names.map(async (name) => {
        const module = await loadServiceModule(name);
        modulesByName.set(name, module);
        runtimes[name] = await openRuntime(module, { config });
      }),
    );
    const child = async (name: ServiceName, label: string, role: ServiceRole): Promise<ChildService> => {
      const port = await freePort();
      const output: string[] = [];
      const started = Object.entries(replicas).filter(([, list]) => list.length > 0);
      const env = { ...childEnv, ...Object.fromEntries(started.map(([peer, list]) => [`${peer.toUpperCase()}_URL`, list.map((c) => c.url).join(',')])) };
      serviceEnvs.set(label, env);
      return { name, label, role, port, url: `http://127.0.0.1:${port}/graphql`, process: spawnService(name, port, env, output, label, role), output };
    };
    // A service that calls others (the cart) starts after them, told where they listen.
    const callsPeers = (name: ServiceName) => Boolean(runtimes[name] && modulesByName.get(name)?.peers?.length);
    const startOrder = [...names.filter((name) => !callsPeers(name)), ...names.filter(callsPeers)];
    for (const name of startOrder) {
      replicas[name] = [];
      workers[name] = [];
      for (let k = 0; k < replicaCount; k++) {
        const suffix = replicaCount === 1 ? '' : `#${k + 1}`;
        replicas[name].push(await child(name, `${name}${suffix}`, options.workers ? 'api' : 'all'));
        if (options.workers) workers[name].push(await child(name, `${name}-worker${suffix}`, 'worker'));
      }
      children[name] = replicas[name][0];
    }
    await Promise.all(everyChild().map((c) => waitHealthy(c)));
    const subgraphUrls = Object.fromEntries(names.map((name) => [name, replicas[name].map((c) => c.url)]));
    if (options.gatewayProcess) {
      gatewayEnv = {
        ...childEnv,
        ...TEST_RATE_LIMITS,
        ...Object.fromEntries(names.map((name) => [`${name.toUpperCase()}_URL`, subgraphUrls[name].join(',')])),
      };
      const port = await freePort();
      const output: string[] = [];
      gatewayChild = {
        name: 'gateway',
        label: 'gateway',
        role: 'all',
        port,
        url: `http://127.0.0.1:${port}/graphql`,
        process: spawnService('gateway', port, gatewayEnv, output, 'gateway', 'all'),
        output,
      };
      await waitHealthy(gatewayChild);
      gateway = { url: gatewayChild.url, close: async () => undefined };
    } else {
      const { startGateway } = await import('../../gateway/src/gateway.ts');
      gateway = await startGateway({ config, port: 0, subgraphUrls });
    }
  } catch (error) {
    const output = everyChild().flatMap((c) => c.output.slice(-10));
    await close();
    throw new Error(`${(error as Error).message}\n${output.join('\n')}`, { cause: error });
  }
  const gatewayUrl = gateway.url;
  const killChild = async (child: ChildService, signal: NodeJS.Signals = 'SIGKILL') => {
    child.process.kill(signal);
    await exited(child.process);
  };
  const restartChild = async (child: ChildService) => {
    if (child.process.exitCode === null && child.process.signalCode === null) throw new Error(`${child.label} is still running`);
    child.output.push(`[${child.label}] --- restarted ---`);
    child.process = spawnService(child.name, child.port, envOf(child), child.output, child.label, child.role);
    await waitHealthy(child);
  };
  return {
    config,
    children,
    replicas,
    workers,
    gatewayUrl,
    gateway: gatewayChild,
    graphql: (query, options = {}) => postGraphQL(gatewayUrl, query, options.variables, options.token),
    token: (sub, roles) => signToken(config.jwtSecret, { sub, roles }),
    em: (service) => runtimes[service]!.runtime.db.fork(),
    get kafka() {
      return runtimes.order!.runtime.kafka;
    },
    services: names,
    kill: (name, signal = 'SIGKILL', replica = 0) => killChild(replicas[name][replica], signal),
    restart: (name, replica = 0) => restartChild(replicas[name][replica]),
    killChild,
    restartChild,
    close,
    [Symbol.asyncDispose]: close,
  };
}

// ---------------------------------------------------------------------------------------------
// Shipment administration

export const DISPATCH_SHIPMENT = `mutation Dispatch($orderId: ID!, $carrier: String!, $trackingNumber: String!) {
  dispatchShipment(orderId: $orderId, carrier: $carrier, trackingNumber: $trackingNumber) { id status carrier trackingNumber dispatchedAt }
}`;
export const MARK_DELIVERED = `mutation Deliver($orderId: ID!) { markShipmentDelivered(orderId: $orderId) { id status carrier trackingNumber deliveredAt } }`;

/** Waits until the confirmed order has its shipment (PENDING), then dispatches it as an admin; returns the shipment. */
export async function dispatchWhenReady(
  system: SagaSystem,
  adminToken: string,
  customerToken: string,
  orderId: string,
  carrier = 'DHL',
  trackingNumber = `JD${orderId.slice(0, 8).toUpperCase()}`,
): Promise<any> {
  await waitForOrder(system, customerToken, orderId, 'shipment created', (o) => o.shipment?.status === 'PENDING');
  const result = await system.graphql(DISPATCH_SHIPMENT, { token: adminToken, variables: { orderId, carrier, trackingNumber } });
  assert.equal(result.errors, undefined, `dispatchShipment failed: ${JSON.stringify(result.errors)}`);
  return result.data.dispatchShipment;
}
