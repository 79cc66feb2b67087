/**
 * `npm run bench -- live`: live stock subscriptions through our gateway and through Hive Gateway,
 * side by side in the same run, over the same subgraphs.
 *
 * 1. Starts its own stack, isolated like the tests (database prefix `swiftcart_live_<id>`, Redis
 *    prefix, Kafka topic prefix): the product and inventory subgraphs as real processes, seeded
 *    with SKU-0001..SKU-<skus> (products and stock). The other three subgraphs are not needed by
 *    `stockLevelChanged` and are not started (both gateways route them to a closed port).
 * 2. For each gateway in turn (ours, then Hive Gateway), in its own process over a snapshot of
 *    schema/supergraph.graphql:
 *    - `--clients` graphql-ws clients in `--workers` client processes (bench/live-worker.ts), each
 *      its own WebSocket with one `stockLevelChanged(skus: [its sku])`; client n follows sku
 *      n mod `--skus`, so every sku has clients/skus subscribers;
 *    - once every client has its first message (the current level), the driver process
 *      (bench/live-driver.ts) changes stock at `--rate` changes per second through the inventory's
 *      StockLedger.adjust (PostgreSQL transaction, then the Redis publish), round robin over the
 *      skus; `--warmup` seconds unmeasured, then `--duration` measured seconds, then it stops and
 *      the bench drains: it waits while messages the window owes are still arriving (until none
 *      has arrived for `--drain` seconds, at most `--drain-max` seconds);
 *    - latency = a client's receive time − the change's commit time (same machine clock), for every
 *      message of a change committed in the measured window;
 *    - the gateway process's RSS and CPU from /proc/<pid>.
 * 3. Prints both gateways side by side and writes bench/results/live-<timestamp>.json.
 *
 * Lost messages: for every change committed in the measured window and every client of its sku
 * that was subscribed when the window opened, a lost message is one that client never received
 * by the end of the drain. It is "skipped" when the client received a later version of the sku
 * (the gateway dropped it), "undelivered" when it did not (still queued somewhere when the drain
 * gave up, or the client's connection or subscription ended).
 */
import { type ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { copyFile, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import {
  type Config,
  REPO_ROOT,
  createKafka,
  createLogger,
  dlqTopic,
  eventsTopic,
  gatewayCredentialHeaders,
  loadConfig,
  openRuntime,
} from '@swiftcart/platform';
import { dropDatabases, ensureDatabases } from '../scripts/infra.ts';
import { seedCatalogue, seedSku } from '../scripts/seed.ts';
import { loadServiceModule } from '../scripts/services.ts';
import { seedProducts } from '../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../subgraphs/inventory/src/stock.ts';
import {
  type Distribution,
  type ProcStats,
  NotReady,
  UsageError,
  distribution,
  fixed,
  forEachFlag,
  freePort,
  mib,
  pinToCore,
  positiveNumber,
  procStats,
  table,
  watchdog,
  writeResults,
} from './lib.ts';
import {
  type ClientEvent,
  type CommitBatch,
  type DriverSummary,
  type LiveDriverReply,
  type LiveDriverRequest,
  type LiveWorkerReply,
  type LiveWorkerRequest,
  type ReceiptBatch,
  type Selection,
  SELECTIONS,
  epochNow,
  subscriptionQuery,
} from './live-protocol.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const HIVE_BIN = path.join(REPO_ROOT, 'node_modules', '@graphql-hive', 'gateway', 'dist', 'bin.js');
const HIVE_CONFIG = path.join(BENCH_DIR, 'hive', 'gateway.config.ts');
const LOG_DIR = path.join(REPO_ROOT, '.data', 'logs');
/** The subgraphs this bench starts; the others are routed to a port nothing listens on. */
const STARTED = ['product', 'inventory'] as const;
const NOT_STARTED = ['order', 'payment', 'shipment'] as const;
/** A client counts as behind when a change committed this long ago has not reached it. */
const BEHIND_MS = 1_000;
/** Separates a sku number from a version in one numeric key. */
const VERSION_SPAN = 2 ** 30;

const GATEWAYS = ['ours', 'hive'] as const;
type GatewayName = (typeof GATEWAYS)[number];
const LABEL: Record<GatewayName, string> = { ours: 'ours', hive: 'Hive Gateway 2.15.1' };

/** The goals the issue sets for this machine. */
const GOALS = { subscribers: 10_000, p99Ms: 100, rate: 1_000 } as const;

export const USAGE = `usage: npm run bench -- live [--clients 10000] [--skus 1000] [--rate 1000] [--duration 30]
                             [--warmup 5] [--drain 10] [--drain-max 120] [--selection full|minimal]
                             [--only ours|hive] [--workers 2] [--connect-concurrency 100]
                             [--subscribe-timeout 180] [--pin clients|none]

  --clients              graphql-ws clients, each its own connection with one subscription (default 10000)
  --skus                 skus SKU-0001..SKU-<skus>; client n follows sku n mod skus (default 1000)
  --rate                 stock changes per second, round robin over the skus, +1/−1 alternately (default 1000)
  --duration             measured seconds, after every client has its current level (default 30)
  --warmup               seconds of changes before the measured window (default 5)
  --drain                after the last change, wait for owed messages until none has arrived for
                         this many seconds (default 10)...
  --drain-max            ...or this many seconds in all (default 120); what has not arrived by then is lost
  --selection            full: ${SELECTIONS.full} (the gateway fetches the name from the
                         product subgraph per event); minimal: ${SELECTIONS.minimal} (default full)
  --only                 run one gateway: ours or hive (default both, ours first)
  --workers              client processes (default 2)
  --connect-concurrency  subscriptions being set up at once per client process (default 100)
  --subscribe-timeout    seconds for every client to get its first message (default 180)
  --pin                  clients: the client processes alone on core 1, the bench and every process it
                         starts (gateway, subgraphs, driver) on core 0, with taskset (the default where
                         taskset and two cores exist); none: nothing pinned, clients share the machine.
                         PostgreSQL, Redis and Kafka are the machine's and are not pinned

Starts its own product and inventory subgraphs (isolated databases, Redis and Kafka prefixes), our
gateway and Hive Gateway, one after the other. Needs PostgreSQL, Redis and Kafka as for npm test,
and schema/supergraph.graphql with Subscription.stockLevelChanged (npm run compose).`;

interface Options {
  clients: number;
  skus: number;
  rate: number;
  durationS: number;
  warmupS: number;
  drainS: number;
  drainMaxS: number;
  selection: Selection;
  only: GatewayName | null;
  workers: number;
  connectConcurrency: number;
  subscribeTimeoutS: number;
  pin: 'clients' | 'none';
}

function parseOptions(args: readonly string[]): Options {
  const options: Options = {
    clients: 10_000,
    skus: 1_000,
    rate: 1_000,
    durationS: 30,
    warmupS: 5,
    drainS: 10,
    drainMaxS: 120,
    selection: 'full',
    only: null,
    workers: 2,
    connectConcurrency: 100,
    subscribeTimeoutS: 180,
    pin: 'clients',
  };
  const zeroOr = (name: string, v: string, max: number) => (v === '0' ? 0 : positiveNumber(name, v, { max }));
  forEachFlag(args, (name, value) => {
    switch (name) {
      case '--clients':
        options.clients = positiveNumber(name, value(), { integer: true, max: 100_000 });
        break;
      case '--skus':
        options.skus = positiveNumber(name, value(), { integer: true, max: 100_000 });
        break;
      case '--rate':
        options.rate = positiveNumber(name, value(), { max: 100_000 });
        break;
      case '--duration':
        options.durationS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--warmup':
        options.warmupS = zeroOr(name, value(), 600);
        break;
      case '--drain':
        options.drainS = zeroOr(name, value(), 600);
        break;
      case '--drain-max':
        options.drainMaxS = zeroOr(name, value(), 3600);
        break;
      case '--workers':
        options.workers = positiveNumber(name, value(), { integer: true, max: 64 });
        break;
      case '--connect-concurrency':
        options.connectConcurrency = positiveNumber(name, value(), { integer: true, max: 10_000 });
        break;
      case '--subscribe-timeout':
        options.subscribeTimeoutS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--selection': {
        const v = value();
        if (!(v in SELECTIONS)) throw new UsageError(`--selection must be one of ${Object.keys(SELECTIONS).join(', ')}, got "${v}"`);
        options.selection = v as Selection;
        break;
      }
      case '--pin': {
        const v = value();
        if (v !== 'clients' && v !== 'none') throw new UsageError(`--pin must be clients or none, got "${v}"`);
        options.pin = v;
        break;
      }
      case '--only': {
        const v = value();
        if (!(GATEWAYS as readonly string[]).includes(v)) throw new UsageError(`--only must be one of ${GATEWAYS.join(', ')}, got "${v}"`);
        options.only = v as GatewayName;
        break;
      }
      default:
        throw new UsageError(`unknown option "${name}"`);
    }
  });
  if (options.skus > options.clients)
    throw new UsageError(`--skus (${options.skus}) must not exceed --clients (${options.clients}): every sku needs a subscriber`);
  return options;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** With `--pin clients`: this process (and so what it starts from now on) on core 0; says where everything runs. */
function placeServerSide(options: Options): string {
  if (options.pin === 'none') return 'nothing pinned: the client processes share both cores with the gateway, subgraphs and driver';
  if (os.availableParallelism() < 2 || !pinToCore(process.pid, 0)) {
    options.pin = 'none';
    return 'nothing pinned (taskset or a second core is missing): the client processes share the machine';
  }
  return 'client processes alone on core 1; bench, gateway, subgraphs and driver on core 0 (taskset); PostgreSQL, Redis and Kafka unpinned';
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is registered, so Ctrl-C, the watchdog and a failure stop them all.

const children = new Set<ChildProcess>();

function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function killAll(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const child of children) child.kill(signal);
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(timer);
}

/** A file under .data/logs for one process's output (appended). */
function logFile(name: string): { fd: number; path: string } {
  mkdirSync(LOG_DIR, { recursive: true });
  const file = path.join(LOG_DIR, `bench-live-${name}.log`);
  return { fd: openSync(file, 'a'), path: path.relative(process.cwd(), file) };
}

/** Starts `node args...` with its output in a log file; rejects if it exits before `ready` resolves. */
async function startProcess(
  name: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<ChildProcess & { logPath: string }> {
  const log = logFile(name);
  const child = track(spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', log.fd, log.fd] }));
  closeSync(log.fd);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited(child)) throw new Error(`${name} exited during start-up (${child.signalCode ?? child.exitCode}); see ${log.path}`);
    if (await ready().catch(() => false)) return Object.assign(child, { logPath: log.path });
    await sleep(250);
  }
  await stopProcess(child, 2_000);
  throw new Error(`${name} was not ready within ${timeoutMs / 1000} s; see ${log.path}`);
}

async function answers(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return response.ok;
}

// ---------------------------------------------------------------------------------------------
// The isolated stack: product and inventory subgraphs over their own databases

interface Stack {
  readonly config: Config;
  /** The environment every process of the stack runs with. */
  readonly env: NodeJS.ProcessEnv;
  /** http://…/graphql of every subgraph (the ones not started point at a closed port). */
  readonly subgraphUrls: Readonly<Record<string, string>>;
  readonly processes: Readonly<Record<string, ChildProcess & { logPath: string }>>;
  readonly id: string;
}

async function startStack(options: Options, say: (line: string) => void): Promise<Stack> {
  const id = randomBytes(3).toString('hex');
  const ports = { product: await freePort(), inventory: await freePort() };
  const closed = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DB_PREFIX: `swiftcart_live_${id}`,
    REDIS_PREFIX: `swiftcart-live:${id}:`,
    KAFKA_TOPIC_PREFIX: `live.${id}.`,
    LOG_LEVEL: process.env.LOG_LEVEL || 'warn',
    PRODUCT_PORT: String(ports.product),
    INVENTORY_PORT: String(ports.inventory),
    // The subgraphs require the gateway credential as in production; both gateways send it.
    SUBGRAPH_SECRET: process.env.SUBGRAPH_SECRET || randomBytes(32).toString('base64url'),
    // Hive Gateway traces nothing. Ours would otherwise trace every event (development's sampler)
    // to a Zipkin that is not there: spans held for the exporter's 5 s outlive V8's young
    // generation, 13 MB/s of them, and the full collections they cause were the p99 (ADR 0018's
    // overhead is measured in docs/performance.md, "Tracing overhead").
    OTEL_SDK_DISABLED: 'true',
  };
  const config = loadConfig(env);
  const subgraphUrls: Record<string, string> = {
    product: `http://127.0.0.1:${ports.product}/graphql`,
    inventory: `http://127.0.0.1:${ports.inventory}/graphql`,
    ...Object.fromEntries(NOT_STARTED.map((name) => [name, `http://127.0.0.1:${closed}/graphql`])),
  };
  try {
    await ensureDatabases(config, STARTED);
  } catch (error) {
    throw new NotReady(`PostgreSQL does not answer at ${config.databaseUrl} (${(error as Error).message})`);
  }
  say(`stack ${id}: databases ${config.databasePrefix}_{product,inventory}, Redis prefix ${config.redisPrefix}, topics ${config.kafkaTopicPrefix}*`);
  const processes: Record<string, ChildProcess & { logPath: string }> = {};
  const stack: Stack = { config, env, subgraphUrls, processes, id };
  try {
    const { products, stock } = seedCatalogue(options.skus);
    {
      await using product = await openRuntime(await loadServiceModule('product'), { config });
      await using inventory = await openRuntime(await loadServiceModule('inventory'), { config });
      await seedProducts(product.runtime.db.fork(), products);
      await seedStock(inventory.runtime.db.fork(), stock);
    }
    say(`seeded ${options.skus} products with stock (${products[0].sku}..${products.at(-1)!.sku})`);
    await Promise.all(
      STARTED.map(async (name) => {
        processes[name] = await startProcess(name, [`subgraphs/${name}/src/main.ts`], env, () => answers(`http://127.0.0.1:${ports[name]}/readyz`), 60_000);
      }),
    );
    say(`subgraphs ready: product :${ports.product}, inventory :${ports.inventory} (logs in ${path.relative(process.cwd(), LOG_DIR)}/bench-live-*.log)`);
    await primeInventory(stack, seedSku(1), say);
  } catch (error) {
    await stopStack(stack);
    throw error;
  }
  return stack;
}

/**
 * Readiness: one subscription straight to the inventory subgraph, so that a subgraph that does not
 * serve `stockLevelChanged` fails the run here, with its log named, rather than as 10,000 failed
 * clients. It also opens the subgraph's Redis subscriber connection before the first burst.
 */
async function primeInventory(stack: Stack, sku: string, say: (line: string) => void): Promise<void> {
  const url = stack.subgraphUrls.inventory.replace(/^http/, 'ws');
  for (let attempt = 1; attempt <= 3; attempt++) {
    const headers = gatewayCredentialHeaders(stack.config.subgraphSecret);
    const webSocketImpl = class extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    };
    const client = createClient({ url, webSocketImpl, retryAttempts: 0 });
    try {
      const outcome = await new Promise<string | null>((resolve) => {
        const timer = setTimeout(() => resolve('no first message within 10 s'), 10_000);
        client.subscribe<{ stockLevelChanged?: { version?: number } }>(
          { query: `subscription { stockLevelChanged(skus: [${JSON.stringify(sku)}]) { version } }` },
          {
            next: (m) => {
              clearTimeout(timer);
              resolve(m.errors?.length ? JSON.stringify(m.errors).slice(0, 300) : typeof m.data?.stockLevelChanged?.version === 'number' ? null : 'no version');
            },
            error: (e) => {
              clearTimeout(timer);
              resolve(
                e instanceof Error ? e.message : Array.isArray(e) ? JSON.stringify(e).slice(0, 300) : `socket closed ${(e as { code?: number }).code ?? ''}`,
              );
            },
            complete: () => {
              clearTimeout(timer);
              resolve('completed before its first message');
            },
          },
        );
      });
      if (outcome === null) return;
      say(`note: warm-up subscription to the inventory subgraph failed (attempt ${attempt}): ${outcome}`);
    } finally {
      await client.dispose();
    }
  }
  throw new Error(`the inventory subgraph does not serve stockLevelChanged over graphql-ws at ${url}; see ${stack.processes.inventory.logPath}`);
}

async function stopStack(stack: Stack): Promise<void> {
  await Promise.all(Object.values(stack.processes).map((p) => stopProcess(p)));
  await dropDatabases(stack.config, STARTED).catch((error) => console.error(`could not drop the bench databases: ${(error as Error).message}`));
  const redis = new Redis(stack.config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${stack.config.redisPrefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } catch (error) {
    console.error(`could not clear the Redis prefix ${stack.config.redisPrefix}: ${(error as Error).message}`);
  } finally {
    redis.disconnect();
  }
  // The topics the two subgraphs created under the run's prefix: their events, and what inventory consumes.
  const kafka = createKafka(stack.config, createLogger('bench-live', 'error'), 'swiftcart-bench-live');
  const topics = [eventsTopic('product'), eventsTopic('inventory'), eventsTopic('order'), dlqTopic(eventsTopic('order'))];
  await Promise.race([
    kafka.deleteTopics(topics),
    sleep(10_000).then(() => {
      throw new Error('no answer within 10 s');
    }),
  ]).catch((error) => console.error(`could not delete the bench's Kafka topics (${stack.config.kafkaTopicPrefix}*): ${(error as Error).message}`));
  await kafka.close().catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// The gateways under test, each its own process

interface GatewayUnderTest {
  readonly name: GatewayName;
  readonly process: ChildProcess & { logPath: string };
  readonly pid: number;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** Prometheus text, when the gateway serves /metrics. */
  readonly metricsUrl: string | null;
}

async function startOurs(stack: Stack, supergraphPath: string): Promise<GatewayUnderTest> {
  const port = await freePort();
  const env = {
    ...stack.env,
    GATEWAY_PORT: String(port),
    SUPERGRAPH_PATH: supergraphPath,
    // Thousands of clients from one address: the gateway's caps and rate limits (gateway/src/rate-limits.ts)
    // stay on, so their cost is in the figures, but raised out of the way.
    MAX_SOCKETS_PER_CLIENT: '100000000',
    RATE_LIMIT_SOCKETS_PER_WINDOW: '100000000',
    RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW: '100000000',
    RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '100000000',
    RATE_LIMIT_HTTP_PER_WINDOW: '100000000',
    ...Object.fromEntries(Object.entries(stack.subgraphUrls).map(([name, url]) => [`${name.toUpperCase()}_URL`, url])),
  };
  const child = await startProcess('gateway-ours', ['gateway/src/main.ts'], env, () => answers(`http://127.0.0.1:${port}/healthz`), 60_000);
  return {
    name: 'ours',
    process: child,
    pid: child.pid!,
    httpUrl: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    metricsUrl: `http://127.0.0.1:${port}/metrics`,
  };
}

async function startHive(stack: Stack, supergraphPath: string): Promise<GatewayUnderTest> {
  if (!existsSync(HIVE_BIN)) throw new NotReady(`Hive Gateway is not installed (${path.relative(process.cwd(), HIVE_BIN)}); run npm install`);
  const port = await freePort();
  // Hive reads PORT, HOST and FORK from the environment too: the flags below decide.
  const { PORT: _port, HOST: _host, FORK: _fork, ...env } = stack.env;
  const child = await startProcess(
    'gateway-hive',
    [HIVE_BIN, 'supergraph', supergraphPath, '--host', '127.0.0.1', '--port', String(port), '--fork', '1', '--config-path', HIVE_CONFIG],
    { ...env, BENCH_SUBGRAPH_URLS: JSON.stringify(stack.subgraphUrls) },
    () => answers(`http://127.0.0.1:${port}/readiness`),
    60_000,
  );
  return {
    name: 'hive',
    process: child,
    pid: child.pid!,
    httpUrl: `http://127.0.0.1:${port}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    metricsUrl: null,
  };
}

/** One query through the gateway that touches both subgraphs, so start-up costs are paid before measuring. */
async function probe(gateway: GatewayUnderTest, sku: string): Promise<void> {
  const response = await fetch(gateway.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ query: `{ stockLevel(sku: ${JSON.stringify(sku)}) { sku available version product { name } } }` }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = (await response.json()) as { data?: { stockLevel?: { product?: { name?: string } } }; errors?: unknown[] };
  if (body.errors?.length || !body.data?.stockLevel?.product?.name) {
    throw new Error(`${LABEL[gateway.name]} does not answer a stockLevel query: ${JSON.stringify(body).slice(0, 400)}`);
  }
}

/** The gateway's own live counters (swiftcart_gateway_*), summed over labels. */
async function scrapeMetrics(url: string | null): Promise<Record<string, number> | null> {
  if (!url) return null;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
    if (!response.ok) return null;
    const values: Record<string, number> = {};
    for (const line of (await response.text()).split('\n')) {
      const match = /^(swiftcart_gateway_[a-z_]+)(?:\{[^}]*\})?\s+(\S+)/.exec(line);
      if (match) values[match[1]] = (values[match[1]] ?? 0) + Number(match[2]);
    }
    return values;
  } catch {
    return null;
  }
}

/** Established TCP connections from `pid` to `port` on 127.0.0.1 (from `ss`; null when it cannot tell). */
function connectionsTo(pid: number, port: number): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { timeout: 5_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => {
      if (error) return resolve(null);
      resolve(stdout.split('\n').filter((line) => line.includes(`pid=${pid},`)).length);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The driver and the client processes

class Driver {
  readonly child: ChildProcess;
  onCommits: (batch: CommitBatch) => void = () => {};
  #stopped: ((summary: DriverSummary) => void) | null = null;
  #failed: ((error: Error) => void) | null = null;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on('message', (m: LiveDriverReply) => {
      if (m.type === 'commits') this.onCommits(m.commits);
      else if (m.type === 'stopped') this.#stopped?.(m.summary);
      else if (m.type === 'failed') this.#failed?.(new Error(`driver: ${m.error}`));
    });
  }

  static async start(env: NodeJS.ProcessEnv): Promise<Driver> {
    // One connection per change in flight (see MAX_IN_FLIGHT in live-driver.ts), and a few spare.
    const child = track(
      fork(path.join(BENCH_DIR, 'live-driver.ts'), [], {
        env: { ...env, DB_POOL_SIZE: '40' },
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    await readyMessage(child, 'the stock-change driver', 30_000);
    return new Driver(child);
  }

  run(rate: number, skus: readonly string[]): void {
    this.child.send({ type: 'run', rate, skus } satisfies LiveDriverRequest);
  }

  stop(): Promise<DriverSummary> {
    return new Promise((resolve, reject) => {
      this.#stopped = resolve;
      this.#failed = reject;
      this.child.once('exit', (code) => reject(new Error(`the driver exited (${code})`)));
      this.child.send({ type: 'stop' } satisfies LiveDriverRequest);
    });
  }

  async exit(): Promise<void> {
    if (exited(this.child)) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies LiveDriverRequest);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  }
}

/** Waits for a forked process's first IPC message. */
function readyMessage(child: ChildProcess, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited during start-up (${code})`));
    });
  });
}

class ClientProcesses {
  readonly workers: readonly ChildProcess[];
  onReceipts: (batch: ReceiptBatch) => void = () => {};
  onEvents: (events: readonly ClientEvent[]) => void = () => {};

  private constructor(workers: ChildProcess[]) {
    this.workers = workers;
    for (const worker of workers) {
      worker.on('message', (m: LiveWorkerReply) => {
        if (m.type === 'receipts') this.onReceipts(m.receipts);
        else if (m.type === 'events') this.onEvents(m.events);
      });
    }
  }

  static async start(count: number, pinned: boolean): Promise<ClientProcesses> {
    const workers = Array.from({ length: count }, () =>
      track(fork(path.join(BENCH_DIR, 'live-worker.ts'), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })),
    );
    if (pinned) for (const worker of workers) pinToCore(worker.pid!, 1);
    await Promise.all(workers.map((w) => readyMessage(w, 'a client process', 30_000)));
    return new ClientProcesses(workers);
  }

  /** Subscribes client n of `clients` to skus[skuOf[n]] in worker n mod workers; resolves when each has its first message or failed. */
  connect(
    url: string,
    selection: Selection,
    clients: number,
    skus: readonly string[],
    options: Options,
    onProgress: (subscribed: number, failed: number) => void,
  ): Promise<{ subscribed: number; failed: number }> {
    const progress = this.workers.map(() => ({ subscribed: 0, failed: 0 }));
    const report = () =>
      onProgress(
        progress.reduce((n, p) => n + p.subscribed, 0),
        progress.reduce((n, p) => n + p.failed, 0),
      );
    return Promise.all(
      this.workers.map(
        (worker, w) =>
          new Promise<void>((resolve, reject) => {
            const ids: number[] = [];
            for (let n = w; n < clients; n += this.workers.length) ids.push(n);
            const onMessage = (m: LiveWorkerReply) => {
              if (m.type === 'progress' || m.type === 'connected') {
                progress[w] = { subscribed: m.subscribed, failed: m.failed };
                report();
              }
              if (m.type === 'connected') {
                cleanup();
                resolve();
              }
              if (m.type === 'failed') {
                cleanup();
                reject(new Error(`client process: ${m.error}`));
              }
            };
            const onExit = (code: number | null) => {
              cleanup();
              reject(new Error(`a client process exited (${code})`));
            };
            const cleanup = () => {
              worker.off('message', onMessage);
              worker.off('exit', onExit);
            };
            worker.on('message', onMessage);
            worker.once('exit', onExit);
            worker.send({
              type: 'connect',
              connect: {
                url,
                selection,
                clients: Int32Array.from(ids),
                skus: ids.map((n) => skus[n % skus.length]),
                concurrency: options.connectConcurrency,
                timeoutMs: options.subscribeTimeoutS * 1000,
              },
            } satisfies LiveWorkerRequest);
          }),
      ),
    ).then(() => ({ subscribed: progress.reduce((n, p) => n + p.subscribed, 0), failed: progress.reduce((n, p) => n + p.failed, 0) }));
  }

  /** Closes every client (and with it every subscription). */
  async closeClients(): Promise<void> {
    await Promise.all(
      this.workers
        .filter((w) => !exited(w))
        .map(
          (worker) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(done, 30_000);
              function done() {
                clearTimeout(timer);
                worker.off('message', onMessage);
                resolve();
              }
              const onMessage = (m: LiveWorkerReply) => {
                if (m.type === 'closed' || m.type === 'failed') done();
              };
              worker.on('message', onMessage);
              worker.once('exit', done);
              worker.send({ type: 'close' } satisfies LiveWorkerRequest);
            }),
        ),
    );
  }

  async exit(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (exited(worker)) return;
        const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        if (worker.connected) worker.send({ type: 'exit' } satisfies LiveWorkerRequest);
        const timer = setTimeout(() => worker.kill('SIGKILL'), 5_000);
        await gone;
        clearTimeout(timer);
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping: every commit and every receipt of one gateway's run

/** A growable column of numbers. */
class Column {
  values = new Float64Array(1 << 16);
  length = 0;
  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }
}

interface ClientProblem {
  readonly kind: ClientEvent['kind'];
  readonly count: number;
  readonly samples: readonly string[];
}

class Tally {
  readonly clients: number;
  readonly skus: number;
  /** Commits: sku number, version, commit time; index by sku/version key. */
  readonly commitSku = new Column();
  readonly commitVersion = new Column();
  readonly commitAt = new Column();
  readonly commitIndex = new Map<number, number>();
  /** Per sku, its commits' indexes in commit order (to find what a client should have by now). */
  readonly commitsOfSku: number[][];
  /** Receipts in arrival order. */
  readonly receiptClient = new Column();
  readonly receiptVersion = new Column();
  readonly receiptAt = new Column();
  /** Per client: its first message's time (NaN until then), highest version seen, when it was closed (NaN if not). */
  readonly firstAt: Float64Array;
  readonly maxVersion: Float64Array;
  readonly endedAt: Float64Array;
  outOfOrder = 0;
  /** Client events by kind, with samples. */
  readonly problems = new Map<ClientEvent['kind'], { count: number; samples: Set<string> }>();
  /** Receipts since the last progress line, with the latency of those whose commit was already known. */
  intervalReceipts = 0;
  intervalLatencies: number[] = [];

  constructor(clients: number, skus: number) {
    this.clients = clients;
    this.skus = skus;
    this.commitsOfSku = Array.from({ length: skus }, () => []);
    this.firstAt = new Float64Array(clients).fill(Number.NaN);
    this.maxVersion = new Float64Array(clients).fill(-1);
    this.endedAt = new Float64Array(clients).fill(Number.NaN);
  }

  skuOf(client: number): number {
    return client % this.skus;
  }

  addCommits(batch: CommitBatch): void {
    for (let i = 0; i < batch.sku.length; i++) {
      const index = this.commitSku.length;
      this.commitSku.push(batch.sku[i]);
      this.commitVersion.push(batch.version[i]);
      this.commitAt.push(batch.at[i]);
      this.commitIndex.set(batch.sku[i] * VERSION_SPAN + batch.version[i], index);
      this.commitsOfSku[batch.sku[i]].push(index);
    }
  }

  addReceipts(batch: ReceiptBatch): void {
    for (let i = 0; i < batch.client.length; i++) {
      const client = batch.client[i],
        version = batch.version[i],
        at = batch.at[i];
      this.receiptClient.push(client);
      this.receiptVersion.push(version);
      this.receiptAt.push(at);
      if (Number.isNaN(this.firstAt[client])) this.firstAt[client] = at;
      if (version < this.maxVersion[client]) this.outOfOrder += 1;
      else this.maxVersion[client] = version;
      this.intervalReceipts += 1;
      const commit = this.commitIndex.get(this.skuOf(client) * VERSION_SPAN + version);
      if (commit !== undefined) this.intervalLatencies.push(at - this.commitAt.values[commit]);
    }
  }

  addEvents(events: readonly ClientEvent[]): void {
    for (const e of events) {
      if ((e.kind === 'closed' || e.kind === 'error' || e.kind === 'complete' || e.kind === 'failed') && Number.isNaN(this.endedAt[e.client]))
        this.endedAt[e.client] = e.at;
      let p = this.problems.get(e.kind);
      if (!p) this.problems.set(e.kind, (p = { count: 0, samples: new Set() }));
      p.count += 1;
      if (p.samples.size < 5) p.samples.add(e.detail);
    }
  }

  problemList(): ClientProblem[] {
    return [...this.problems].map(([kind, p]) => ({ kind, count: p.count, samples: [...p.samples] }));
  }

  /** Subscribed clients not ended, whose last version is behind a change committed more than BEHIND_MS ago. */
  clientsBehind(now: number): number {
    const cutoff = now - BEHIND_MS;
    const due = new Float64Array(this.skus).fill(-1);
    for (let s = 0; s < this.skus; s++) {
      const list = this.commitsOfSku[s];
      for (let k = list.length - 1; k >= 0; k--) {
        if (this.commitAt.values[list[k]] <= cutoff) {
          due[s] = this.commitVersion.values[list[k]];
          break;
        }
      }
    }
    let behind = 0;
    for (let c = 0; c < this.clients; c++) {
      if (Number.isNaN(this.firstAt[c]) || !Number.isNaN(this.endedAt[c])) continue;
      if (this.maxVersion[c] < due[this.skuOf(c)]) behind += 1;
    }
    return behind;
  }

  /** The figures of the window [from, to): see the file's header for what counts as lost. */
  analyse(from: number, to: number): WindowFigures {
    const inWindow = new Int32Array(this.commitSku.length).fill(-1);
    let windowCommits = 0;
    for (let i = 0; i < this.commitSku.length; i++) {
      const at = this.commitAt.values[i];
      if (at >= from && at < to) inWindow[i] = windowCommits++;
    }
    // Clients that had their current level when the window opened and were not closed before it.
    const eligible = new Uint8Array(this.clients);
    const subscribersOfSku = new Int32Array(this.skus);
    let eligibleClients = 0;
    for (let c = 0; c < this.clients; c++) {
      if (this.firstAt[c] < from && !(this.endedAt[c] < from)) {
        eligible[c] = 1;
        eligibleClients += 1;
        subscribersOfSku[this.skuOf(c)] += 1;
      }
    }
    let expected = 0;
    for (let i = 0; i < inWindow.length; i++) if (inWindow[i] >= 0) expected += subscribersOfSku[this.commitSku.values[i]];

    const received = new Set<number>();
    const latencies = new Column();
    let duplicates = 0,
      late = 0;
    for (let r = 0; r < this.receiptClient.length; r++) {
      const client = this.receiptClient.values[r];
      if (!eligible[client]) continue;
      const commit = this.commitIndex.get(this.skuOf(client) * VERSION_SPAN + this.receiptVersion.values[r]);
      if (commit === undefined || inWindow[commit] < 0) continue;
      const key = inWindow[commit] * this.clients + client;
      if (received.has(key)) {
        duplicates += 1;
        continue;
      }
      received.add(key);
      const latency = this.receiptAt.values[r] - this.commitAt.values[commit];
      latencies.push(latency);
      if (latency > BEHIND_MS) late += 1;
    }

    // Lost: every (window commit, eligible subscriber of its sku) pair without a receipt.
    const clientsOfSku: number[][] = Array.from({ length: this.skus }, () => []);
    for (let c = 0; c < this.clients; c++) if (eligible[c]) clientsOfSku[this.skuOf(c)].push(c);
    let gaps = 0,
      tail = 0,
      onEndedClients = 0;
    const clientsLosing = new Set<number>();
    for (let i = 0; i < inWindow.length; i++) {
      if (inWindow[i] < 0) continue;
      const version = this.commitVersion.values[i];
      for (const c of clientsOfSku[this.commitSku.values[i]]) {
        if (received.has(inWindow[i] * this.clients + c)) continue;
        clientsLosing.add(c);
        if (this.maxVersion[c] > version) gaps += 1;
        else tail += 1;
        if (!Number.isNaN(this.endedAt[c])) onEndedClients += 1;
      }
    }
    let endedInWindow = 0;
    for (let c = 0; c < this.clients; c++) if (eligible[c] && !Number.isNaN(this.endedAt[c])) endedInWindow += 1;
    const seconds = (to - from) / 1000;
    return {
      seconds,
      commits: windowCommits,
      commitsPerSecond: windowCommits / seconds,
      subscribedClients: eligibleClients,
      expected,
      delivered: received.size,
      deliveredPerSecond: received.size / seconds,
      latencyMs: distribution(latencies.values.subarray(0, latencies.length)),
      lost: gaps + tail,
      lostSkipped: gaps,
      lostUndelivered: tail,
      lostOnEndedClients: onEndedClients,
      clientsLosing: clientsLosing.size,
      clientsEnded: endedInWindow,
      duplicates,
      deliveredLaterThan1s: late,
      outOfOrder: this.outOfOrder,
    };
  }
}

interface WindowFigures {
  readonly seconds: number;
  /** Changes committed in the window, and per second. */
  readonly commits: number;
  readonly commitsPerSecond: number;
  /** Clients subscribed when the window opened. */
  readonly subscribedClients: number;
  /** Messages the window's commits owe those clients, and how many arrived (each once). */
  readonly expected: number;
  readonly delivered: number;
  readonly deliveredPerSecond: number;
  /** Commit → client, ms, over every delivered message. */
  readonly latencyMs: Distribution;
  readonly lost: number;
  /** Lost, with a later version of the sku received by the same client. */
  readonly lostSkipped: number;
  /** Lost, with nothing later received. */
  readonly lostUndelivered: number;
  /** Of the lost, those owed to clients that were closed or whose subscription ended. */
  readonly lostOnEndedClients: number;
  /** Clients missing at least one message. */
  readonly clientsLosing: number;
  /** Clients subscribed at the window's start whose connection or subscription ended before the end. */
  readonly clientsEnded: number;
  readonly duplicates: number;
  readonly deliveredLaterThan1s: number;
  /** Messages with a lower version than one the same client had already received (whole run). */
  readonly outOfOrder: number;
}

// ---------------------------------------------------------------------------------------------
// One gateway's run

interface GatewayRun {
  readonly gateway: GatewayName;
  readonly label: string;
  readonly pid: number;
  readonly clients: { readonly requested: number; readonly subscribed: number; readonly failed: number; readonly subscribeSeconds: number };
  readonly window: WindowFigures;
  readonly driver: DriverSummary;
  readonly drainSeconds: number;
  /** The most clients found behind by more than BEHIND_MS at a progress check during the window. */
  readonly maxClientsBehind: number;
  readonly clientProblems: readonly ClientProblem[];
  readonly process: {
    readonly idle: ProcStats;
    readonly subscribed: ProcStats;
    readonly end: ProcStats;
    /** Highest VmRSS sampled (once a second) from the first change to the end of the drain. */
    readonly sampledPeakRssBytes: number | null;
    /** VmHWM at the end: the process's high-water mark since it started. */
    readonly peakRssBytes: number | null;
    /** (subscribed RSS − idle RSS) / subscribed clients: what holding a subscriber costs. */
    readonly rssPerSubscriberHeldBytes: number | null;
    /** (peak RSS − idle RSS) / subscribed clients: including what serving them at the rate costs. */
    readonly rssPerSubscriberPeakBytes: number | null;
    /** % of one core, user + system, over the measured window. */
    readonly cpuPercent: number | null;
  };
  readonly upstream: { readonly tcpConnectionsToInventory: number | null };
  /** What the gateway's way of subscribing costs the subgraphs: their CPU over the window, RSS before clients, with them, at the end. */
  readonly subgraphs: Readonly<
    Record<
      string,
      {
        readonly cpuPercent: number | null;
        readonly rssIdleBytes: number | null;
        readonly rssSubscribedBytes: number | null;
        readonly rssEndBytes: number | null;
      }
    >
  >;
  readonly metrics: Record<string, number> | null;
}

async function runGateway(
  name: GatewayName,
  stack: Stack,
  supergraphPath: string,
  driver: Driver,
  options: Options,
  skus: readonly string[],
  say: (line: string) => void,
): Promise<GatewayRun> {
  say(`\n== ${LABEL[name]} ==`);
  const gateway = name === 'ours' ? await startOurs(stack, supergraphPath) : await startHive(stack, supergraphPath);
  let clients: ClientProcesses | undefined;
  const tally = new Tally(options.clients, skus.length);
  driver.onCommits = (batch) => tally.addCommits(batch);
  try {
    await probe(gateway, skus[0]);
    await sleep(1_000);
    const subgraphStats = () => Promise.all(STARTED.map((n) => procStats(stack.processes[n].pid!)));
    const idle = await procStats(gateway.pid);
    const subgraphsIdle = await subgraphStats();
    say(`${LABEL[name]} ready (pid ${gateway.pid}, ${gateway.wsUrl}); idle RSS ${mib(idle.rssBytes)} MiB`);

    clients = await ClientProcesses.start(options.workers, options.pin === 'clients');
    clients.onReceipts = (batch) => tally.addReceipts(batch);
    clients.onEvents = (events) => tally.addEvents(events);
    const connectStarted = performance.now();
    let lastShown = 0;
    const connected = await clients.connect(gateway.wsUrl, options.selection, options.clients, skus, options, (subscribed, failed) => {
      if (performance.now() - lastShown < 5_000) return;
      lastShown = performance.now();
      say(
        `  subscribing: ${subscribed}/${options.clients} have their current level${failed ? `, ${failed} failed` : ''} (${fixed((performance.now() - connectStarted) / 1000, 0)} s)`,
      );
    });
    const subscribeSeconds = (performance.now() - connectStarted) / 1000;
    say(
      `  ${connected.subscribed} clients subscribed in ${fixed(subscribeSeconds)} s${connected.failed ? `, ${connected.failed} FAILED (e.g. ${tally.problems.get('failed')?.samples.values().next().value ?? '?'})` : ''}`,
    );
    if (connected.subscribed === 0) throw new Error(`no client could subscribe through ${LABEL[name]}`);
    await sleep(2_000);
    const subscribed = await procStats(gateway.pid);
    const subgraphsSubscribed = await subgraphStats();
    say(`  RSS with ${connected.subscribed} subscribers: ${mib(subscribed.rssBytes)} MiB`);

    // Drive: warm-up, then the measured window.
    let sampledPeak = subscribed.rssBytes ?? 0;
    const sampler = setInterval(() => {
      void procStats(gateway.pid).then((s) => {
        if (s.rssBytes !== null) sampledPeak = Math.max(sampledPeak, s.rssBytes);
      });
    }, 1_000);
    let upstream: number | null = null;
    let metrics: Record<string, number> | null = null;
    let driving = false;
    try {
      driver.run(options.rate, skus);
      driving = true;
      say(`  driving ${options.rate} changes/s over ${skus.length} skus: ${options.warmupS} s warm-up, then ${options.durationS} s measured`);
      await sleep(options.warmupS * 1000);
      const from = epochNow();
      const [cpuFrom, subgraphsFrom] = await Promise.all([procStats(gateway.pid), subgraphStats()]);
      tally.intervalReceipts = 0;
      tally.intervalLatencies = [];
      const windowEnds = performance.now() + options.durationS * 1000;
      let lastLine = performance.now();
      let maxBehind = 0;
      while (windowEnds - performance.now() > 100) {
        await sleep(Math.min(5_000, windowEnds - performance.now()));
        const now = performance.now();
        const lat = distribution(tally.intervalLatencies);
        const behind = tally.clientsBehind(epochNow());
        maxBehind = Math.max(maxBehind, behind);
        say(
          `  ${fixed((now - (windowEnds - options.durationS * 1000)) / 1000, 0).padStart(4)} s  ${fixed(tally.intervalReceipts / ((now - lastLine) / 1000), 0)} msg/s, ` +
            `latency p50 ${fixed(lat.p50)} p99 ${fixed(lat.p99)} ms, ${behind} clients behind > ${BEHIND_MS / 1000} s`,
        );
        tally.intervalReceipts = 0;
        tally.intervalLatencies = [];
        lastLine = now;
      }
      await sleep(Math.max(0, windowEnds - performance.now()));
      const to = epochNow();
      const [cpuTo, subgraphsTo] = await Promise.all([procStats(gateway.pid), subgraphStats()]);
      [upstream, metrics] = await Promise.all([
        connectionsTo(gateway.pid, Number(new URL(stack.subgraphUrls.inventory).port)),
        scrapeMetrics(gateway.metricsUrl),
      ]);
      driving = false;
      const summary = await driver.stop();
      // Drain: while owed messages still arrive, until none has for --drain s, at most --drain-max s.
      const drainStarted = performance.now();
      let figures = tally.analyse(from, to);
      let lastProgress = performance.now();
      let announced = performance.now();
      while (
        figures.delivered < figures.expected &&
        performance.now() - lastProgress < options.drainS * 1000 &&
        performance.now() - drainStarted < options.drainMaxS * 1000
      ) {
        await sleep(500);
        const before = figures.delivered;
        figures = tally.analyse(from, to);
        if (figures.delivered > before) lastProgress = performance.now();
        if (performance.now() - announced >= 5_000) {
          announced = performance.now();
          say(`  draining: ${figures.expected - figures.delivered} messages owed (${fixed((performance.now() - drainStarted) / 1000, 0)} s)`);
        }
      }
      // Receipts still in the workers' batches.
      await sleep(300);
      figures = tally.analyse(from, to);
      const drainSeconds = (performance.now() - drainStarted) / 1000;
      const end = await procStats(gateway.pid);
      const cpu = (a: ProcStats, b: ProcStats) =>
        a.cpuSeconds !== null && b.cpuSeconds !== null ? ((b.cpuSeconds - a.cpuSeconds) / ((to - from) / 1000)) * 100 : null;
      const cpuPercent = cpu(cpuFrom, cpuTo);
      const subgraphsEnd = await subgraphStats();
      const perSubscriber = (rss: number | null) =>
        rss !== null && idle.rssBytes !== null && connected.subscribed > 0 ? (rss - idle.rssBytes) / connected.subscribed : null;
      const peak = Math.max(sampledPeak, end.rssBytes ?? 0);
      say(
        `  window: ${figures.commits} changes committed (${fixed(figures.commitsPerSecond)}/s), ${figures.delivered} of ${figures.expected} messages delivered, ${figures.lost} lost; drain ${fixed(drainSeconds)} s`,
      );
      return {
        gateway: name,
        label: LABEL[name],
        pid: gateway.pid,
        clients: { requested: options.clients, subscribed: connected.subscribed, failed: connected.failed, subscribeSeconds },
        window: figures,
        driver: summary,
        drainSeconds,
        maxClientsBehind: maxBehind,
        clientProblems: tally.problemList(),
        process: {
          idle,
          subscribed,
          end,
          sampledPeakRssBytes: peak || null,
          peakRssBytes: end.peakRssBytes,
          rssPerSubscriberHeldBytes: perSubscriber(subscribed.rssBytes),
          rssPerSubscriberPeakBytes: perSubscriber(peak || null),
          cpuPercent,
        },
        upstream: { tcpConnectionsToInventory: upstream },
        subgraphs: Object.fromEntries(
          STARTED.map((n, i) => [
            n,
            {
              cpuPercent: cpu(subgraphsFrom[i], subgraphsTo[i]),
              rssIdleBytes: subgraphsIdle[i].rssBytes,
              rssSubscribedBytes: subgraphsSubscribed[i].rssBytes,
              rssEndBytes: subgraphsEnd[i].rssBytes,
            },
          ]),
        ),
        metrics,
      };
    } finally {
      clearInterval(sampler);
      // A failure mid-window: the driver stops before anything else happens.
      if (driving) await driver.stop().catch(() => undefined);
    }
  } finally {
    if (clients) {
      await clients.closeClients();
      await clients.exit();
    }
    await stopProcess(gateway.process);
  }
}

// ---------------------------------------------------------------------------------------------

export async function main(args: readonly string[]): Promise<number> {
  const options = parseOptions(args);
  const say = (line: string) => console.log(line);
  const supergraph = await readFile(loadConfig().supergraphPath, 'utf8').catch(() => '');
  if (!/\bstockLevelChanged\s*\(/.test(supergraph)) {
    console.error('bench live: schema/supergraph.graphql has no Subscription.stockLevelChanged; run `npm run compose`');
    return 1;
  }
  const fdLimit = await new Promise<number | null>((resolve) =>
    execFile('sh', ['-c', 'ulimit -n'], (error, stdout) => resolve(error ? null : Number(stdout.trim()) || null)),
  );
  if (fdLimit !== null && fdLimit < options.clients + 1_000) {
    console.log(`note: the open-file limit is ${fdLimit}; a gateway holding ${options.clients} sockets needs more (ulimit -n)`);
  }
  const placement = placeServerSide(options);
  console.log(placement);
  const gateways = options.only ? [options.only] : [...GATEWAYS];
  const skus = Array.from({ length: options.skus }, (_, i) => seedSku(i + 1));
  // Both gateways read the same snapshot: a `npm run compose` during the run changes neither.
  const supergraphPath = path.join(os.tmpdir(), `swiftcart-live-supergraph-${process.pid}.graphql`);
  await copyFile(loadConfig().supergraphPath, supergraphPath);

  const perGatewayS = 60 + options.subscribeTimeoutS + options.warmupS + options.durationS + options.drainMaxS + 90;
  const guard = watchdog((180 + perGatewayS * gateways.length) * 1000, () => killAll());
  let stack: Stack | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench live: ${signal}; stopping every process it started and removing its databases`);
    killAll();
    const force = setTimeout(() => process.exit(130), 10_000);
    void (stack ? stopStack(stack) : Promise.resolve())
      .then(() => rm(supergraphPath, { force: true }))
      .finally(() => {
        clearTimeout(force);
        process.exit(130);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let driver: Driver | undefined;
  const loadAtStart = os.loadavg();
  try {
    try {
      stack = await startStack(options, say);
    } catch (error) {
      if (error instanceof NotReady) {
        console.error(`bench live: ${error.message}`);
        return 1;
      }
      throw error;
    }
    driver = await Driver.start(stack.env);
    say(
      `${options.clients} clients over ${options.skus} skus (${fixed(options.clients / options.skus)} per sku) in ${options.workers} client processes; ` +
        `selection ${options.selection}: { ${SELECTIONS[options.selection]} }`,
    );

    const runs: GatewayRun[] = [];
    for (const name of gateways) runs.push(await runGateway(name, stack, supergraphPath, driver, options, skus, say));

    const result = {
      bench: 'live',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        memoryBytes: os.totalmem(),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        loadAverageAtStart: loadAtStart,
        loadAverageAtEnd: os.loadavg(),
      },
      settings: {
        clients: options.clients,
        skus: options.skus,
        subscribersPerSku: options.clients / options.skus,
        rate: options.rate,
        durationSeconds: options.durationS,
        warmupSeconds: options.warmupS,
        drainIdleSeconds: options.drainS,
        drainMaxSeconds: options.drainMaxS,
        selection: options.selection,
        subscription: subscriptionQuery(options.selection),
        workers: options.workers,
        connectConcurrency: options.connectConcurrency,
        pin: options.pin,
        placement,
        stack: stack.id,
      },
      goals: GOALS,
      gateways: Object.fromEntries(runs.map((r) => [r.gateway, r])),
      notes: [
        'latency: receive time in a client process − commit time in the driver process (epoch ms from performance.timeOrigin + performance.now(), same machine clock), over every message of every change committed in the measured window',
        'lost: (change committed in the window, client of its sku subscribed when the window opened) pairs never received by the end of the drain; gap = the client received a later version, tail = it did not',
        'RSS from /proc/<pid>/status of the gateway process; CPU from /proc/<pid>/stat over the measured window, % of one core; the subgraphs, PostgreSQL, Redis, the driver and the clients share the same cores',
        'per subscriber: held = (RSS once every client is subscribed − idle RSS) / subscribers; peak = (highest RSS sampled from the first change to the end of the drain − idle RSS) / subscribers',
      ],
    };
    printResult(runs, options);
    const files = await writeResults('live', jsonSafe(result));
    say(`load average (1 min) ${fixed(loadAtStart[0], 2)} at the start, ${fixed(os.loadavg()[0], 2)} at the end, on ${os.cpus().length} CPUs`);
    say(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    return 0;
  } finally {
    await driver?.exit();
    if (stack) await stopStack(stack);
    await rm(supergraphPath, { force: true });
    guard.clear();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function printResult(runs: readonly GatewayRun[], options: Options): void {
  const kib = (bytes: number | null) => (bytes === null ? '-' : fixed(bytes / 1024, 1));
  const errors = (r: GatewayRun) => r.clients.failed + r.clientProblems.filter((p) => p.kind !== 'failed').reduce((n, p) => n + p.count, 0);
  // One row per figure, one column per gateway, and their ratio where lower or higher is better.
  const figures: [string, (r: GatewayRun) => string, ((r: GatewayRun) => number | null)?][] = [
    ['clients subscribed', (r) => `${r.clients.subscribed}/${r.clients.requested}`],
    ['changes committed per second', (r) => fixed(r.window.commitsPerSecond, 0)],
    [
      'messages delivered per second (owed)',
      (r) => `${fixed(r.window.deliveredPerSecond, 0)} (${fixed(r.window.expected / r.window.seconds, 0)})`,
      (r) => r.window.deliveredPerSecond,
    ],
    ['latency p50, ms (commit → client)', (r) => fixed(r.window.latencyMs.p50, 1), (r) => r.window.latencyMs.p50],
    ['latency p99, ms', (r) => fixed(r.window.latencyMs.p99, 1), (r) => r.window.latencyMs.p99],
    ['latency max, ms', (r) => fixed(r.window.latencyMs.max, 0)],
    ['messages lost (skipped / undelivered)', (r) => `${r.window.lost} (${r.window.lostSkipped} / ${r.window.lostUndelivered})`],
    [`clients behind > ${BEHIND_MS / 1000} s (most at a check)`, (r) => String(r.maxClientsBehind)],
    ['gateway CPU, % of one core', (r) => fixed(r.process.cpuPercent ?? Number.NaN, 0), (r) => r.process.cpuPercent],
    ['gateway RSS idle, MiB', (r) => mib(r.process.idle.rssBytes)],
    ['gateway RSS peak, MiB', (r) => mib(r.process.sampledPeakRssBytes), (r) => r.process.sampledPeakRssBytes],
    ['RSS per subscriber held, KiB', (r) => kib(r.process.rssPerSubscriberHeldBytes), (r) => r.process.rssPerSubscriberHeldBytes],
    ['RSS per subscriber at peak, KiB', (r) => kib(r.process.rssPerSubscriberPeakBytes), (r) => r.process.rssPerSubscriberPeakBytes],
    ['inventory subgraph CPU, %', (r) => fixed(r.subgraphs.inventory?.cpuPercent ?? Number.NaN, 0), (r) => r.subgraphs.inventory?.cpuPercent ?? null],
    ['product subgraph CPU, %', (r) => fixed(r.subgraphs.product?.cpuPercent ?? Number.NaN, 0), (r) => r.subgraphs.product?.cpuPercent ?? null],
    ['errors (failed subscribes, closes, bad messages)', (r) => String(errors(r))],
  ];
  const ratio = (x: number | null, y: number | null) =>
    x === null || y === null || !Number.isFinite(x) || !Number.isFinite(y) || y === 0 ? '' : `${fixed(x / y, x / y < 0.1 ? 3 : 2)}×`;
  const rows: string[][] = [
    ['', ...runs.map((r) => r.label), ...(runs.length === 2 ? ['ours / Hive'] : [])],
    ...figures.map(([label, show, value]) => [label, ...runs.map(show), ...(runs.length === 2 ? [value ? ratio(value(runs[0]), value(runs[1])) : ''] : [])]),
  ];
  console.log(`\n${table(rows)}`);
  console.log(
    `  (${options.clients} clients, ${options.skus} skus, ${options.rate} changes/s, selection ${options.selection}, ${fixed(runs[0]?.window.seconds ?? Number.NaN)} s measured; ` +
      'RSS per subscriber = (RSS − idle RSS) / subscribers: held = once all are subscribed, before any change; at peak = highest RSS sampled from the first change to the end of the drain)',
  );
  for (const r of runs) {
    const w = r.window;
    console.log(
      `\n${r.label}: ${w.delivered} of ${w.expected} messages delivered (drain ${fixed(r.drainSeconds)} s); lost ${w.lost} (${w.lostSkipped} skipped, ${w.lostUndelivered} undelivered` +
        `${w.lostOnEndedClients ? `, ${w.lostOnEndedClients} on clients whose subscription ended` : ''}) on ${w.clientsLosing} clients; ` +
        `${w.deliveredLaterThan1s} delivered later than 1 s; ${w.duplicates} duplicates; ${w.outOfOrder} out of order`,
    );
    if (r.clients.failed) console.log(`  ${r.clients.failed} clients never got their current level`);
    if (w.clientsEnded) console.log(`  ${w.clientsEnded} subscribed clients were closed or ended during the window`);
    for (const p of r.clientProblems) console.log(`  ${p.kind} ×${p.count}: ${p.samples.join(' | ')}`);
    console.log(
      `  driver: ${r.driver.committed} changes committed (${r.driver.failed} failed${r.driver.errorSamples.length ? `: ${r.driver.errorSamples[0]}` : ''}), ` +
        `commit (transaction + announce) p50 ${fixed(r.driver.commitMs.p50)} / p99 ${fixed(r.driver.commitMs.p99)} ms, worst schedule lag ${fixed(r.driver.maxScheduleLagMs, 0)} ms`,
    );
    console.log(
      `  gateway pid ${r.pid}: RSS idle ${mib(r.process.idle.rssBytes)}, subscribed ${mib(r.process.subscribed.rssBytes)}, peak sampled ${mib(r.process.sampledPeakRssBytes)}, ` +
        `VmHWM ${mib(r.process.peakRssBytes)} MiB; TCP connections to inventory: ${r.upstream.tcpConnectionsToInventory ?? '?'}`,
    );
    console.log(
      `  subgraphs: ${Object.entries(r.subgraphs)
        .map(
          ([n, g]) =>
            `${n} CPU ${fixed(g.cpuPercent ?? Number.NaN, 0)} %, RSS ${mib(g.rssIdleBytes)} → ${mib(g.rssSubscribedBytes)} subscribed → ${mib(g.rssEndBytes)} MiB`,
        )
        .join('; ')}`,
    );
    if (r.metrics)
      console.log(
        `  /metrics: ${Object.entries(r.metrics)
          .map(([k, v]) => `${k.replace('swiftcart_gateway_', '')} ${v}`)
          .join(', ')}`,
      );
  }
  const goal = runs.find((r) => r.gateway === 'ours');
  if (goal && options.clients >= GOALS.subscribers && options.rate >= GOALS.rate) {
    const met = goal.window.latencyMs.p99 < GOALS.p99Ms && goal.window.lost === 0 && goal.clients.subscribed >= GOALS.subscribers;
    console.log(
      `\ngoal (${GOALS.subscribers} subscribers on one gateway process, p99 < ${GOALS.p99Ms} ms at ${GOALS.rate} changes/s, none lost): ${met ? 'met' : 'NOT met'}`,
    );
  }
}

/** NaN becomes null in the JSON file (JSON has no NaN). */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
}
