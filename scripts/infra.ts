/**
 * Local infrastructure for SwiftCart: Kafka (started here when nothing answers), one PostgreSQL
 * database per service, and a Redis check.
 *
 *   node scripts/infra.ts up|down|status|db|redis|kafka-start|kafka-stop|kafka-status
 *
 * The functions are exported for scripts/start.ts, scripts/test.ts and tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { REPO_ROOT, databaseName, loadConfig, SERVICE_NAMES } from '../platform/src/config.ts';
import type { Config, ServiceName } from '../platform/src/config.ts';
import { ensureKafka, kafkaStatus, stopKafka } from './kafka/broker.ts';
import type { EnsureKafkaResult, Log } from './kafka/broker.ts';

export { ensureKafka, kafkaAnswers, kafkaStatus, stopKafka } from './kafka/broker.ts';
export type { EnsureKafkaResult, KafkaStatus, Log, StopKafkaResult } from './kafka/broker.ts';

/** The part of the configuration the database functions need. */
export type DatabaseConfig = Pick<Config, 'databaseUrl' | 'databasePrefix'>;

/** Result of {@link ensureDatabases}. */
export interface EnsureDatabasesResult {
  /** Databases this call created. */
  readonly created: string[];
  /** Databases that were there already. */
  readonly existing: string[];
}

/** Result of {@link ensureInfrastructure}. */
export interface InfrastructureResult {
  readonly kafka: EnsureKafkaResult;
  readonly databases: EnsureDatabasesResult;
}

// `pg` ships no type declarations (and @types/pg is not installed): the little used here is typed locally.
interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}
interface PgModule {
  Client: new (options: { connectionString: string; connectionTimeoutMillis?: number; application_name?: string }) => PgClient;
}
const require = createRequire(import.meta.url);

/** Connects to the `postgres` maintenance database of the server at `DATABASE_URL`. */
async function connectMaintenance(config: DatabaseConfig): Promise<PgClient> {
  const { Client } = require('pg') as PgModule;
  const url = new URL(config.databaseUrl);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString(), connectionTimeoutMillis: 5_000, application_name: 'swiftcart-infra' });
  try {
    await client.connect();
  } catch (error) {
    url.password = url.password ? '***' : '';
    throw new Error(`PostgreSQL does not answer at ${url.toString()}: ${(error as Error).message} (check DATABASE_URL)`, { cause: error });
  }
  return client;
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Creates the databases `<DB_PREFIX>_<service>` that do not exist yet (every service unless
 * `services` says otherwise). Safe to run concurrently: a database created by someone else in
 * the meantime counts as existing.
 */
export async function ensureDatabases(config: DatabaseConfig, services: readonly ServiceName[] = SERVICE_NAMES): Promise<EnsureDatabasesResult> {
  const names = services.map((service) => databaseName(config, service));
  const client = await connectMaintenance(config);
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname = ANY($1::text[])', [names]);
    const present = new Set(rows.map((row) => String(row.datname)));
    const created: string[] = [];
    const existing: string[] = [];
    for (const name of names) {
      if (present.has(name)) {
        existing.push(name);
        continue;
      }
      try {
        await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
        created.push(name);
      } catch (error) {
        // duplicate_database, or the unique index on pg_database when two creators race
        const code = (error as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw error;
        existing.push(name);
      }
    }
    return { created, existing };
  } finally {
    await client.end();
  }
}

/**
 * Drops the databases `<DB_PREFIX>_<service>` of this configuration, closing their connections
 * (`WITH (FORCE)`). Meant for tests that made their own prefix; returns the names that existed.
 */
export async function dropDatabases(config: DatabaseConfig, services: readonly ServiceName[] = SERVICE_NAMES): Promise<string[]> {
  const names = services.map((service) => databaseName(config, service));
  const client = await connectMaintenance(config);
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname = ANY($1::text[])', [names]);
    const dropped = rows.map((row) => String(row.datname));
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    return dropped;
  } finally {
    await client.end();
  }
}

/** Lists which of this configuration's service databases exist. */
export async function listDatabases(config: DatabaseConfig): Promise<string[]> {
  const names = SERVICE_NAMES.map((service) => databaseName(config, service));
  const client = await connectMaintenance(config);
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname = ANY($1::text[]) ORDER BY datname', [names]);
    return rows.map((row) => String(row.datname));
  } finally {
    await client.end();
  }
}

/** PINGs Redis at `REDIS_URL`; throws a clear error when it does not answer within 3 s. */
export async function checkRedis(config: Pick<Config, 'redisUrl'>): Promise<void> {
  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    connectTimeout: 3_000,
    commandTimeout: 3_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    // ioredis keeps a 2 s timer alive after disconnect() by default, which delays a CLI's exit.
    disconnectTimeout: 200,
  });
  let lastError: Error | undefined;
  redis.on('error', (error: Error) => {
    lastError = error;
  });
  const where = (() => {
    const url = new URL(config.redisUrl);
    if (url.password) url.password = '***';
    return url.toString();
  })();
  try {
    await redis.connect();
    const answer = await redis.ping();
    if (answer !== 'PONG') throw new Error(`answered PING with "${answer}"`);
  } catch (error) {
    // ioredis rejects connect() with "Connection is closed."; the 'error' event has the cause (ECONNREFUSED, ...).
    throw new Error(`Redis does not answer at ${where}: ${lastError?.message ?? (error as Error).message} (check REDIS_URL)`, { cause: error });
  } finally {
    redis.disconnect();
  }
}

/**
 * Brings up everything a SwiftCart process needs on this machine: checks Redis, creates the
 * service databases, and makes sure Kafka answers (starting the local broker if needed).
 */
export async function ensureInfrastructure(options: { log?: Log; env?: NodeJS.ProcessEnv } = {}): Promise<InfrastructureResult> {
  const log = options.log ?? (() => {});
  const env = options.env ?? process.env;
  const config = loadConfig(env);
  await checkRedis(config);
  log(`Redis answers at ${config.redisUrl}`);
  const databases = await ensureDatabases(config);
  log(`databases: ${describeDatabases(databases)}`);
  const kafka = await ensureKafka({ log, env });
  log(kafka.started ? `Kafka started on ${kafka.broker} (pid ${kafka.pid})` : `Kafka answers on ${kafka.broker}`);
  return { kafka, databases };
}

/**
 * Where `npm start` leaves the SUBGRAPH_SECRET it made for its run (mode 0600, removed when it
 * stops), so that the benches can start gateways of their own beside its subgraphs.
 */
export const RUN_SUBGRAPH_SECRET_FILE = path.join(REPO_ROOT, '.data', 'run', 'subgraph-secret');

/** Records the run's SUBGRAPH_SECRET for the benches; readable by this user only. */
export function writeRunSubgraphSecret(secret: string): void {
  mkdirSync(path.dirname(RUN_SUBGRAPH_SECRET_FILE), { recursive: true, mode: 0o700 });
  writeFileSync(RUN_SUBGRAPH_SECRET_FILE, secret, { mode: 0o600 });
}

/** Forgets the run's SUBGRAPH_SECRET (npm start stopping). */
export function removeRunSubgraphSecret(): void {
  rmSync(RUN_SUBGRAPH_SECRET_FILE, { force: true });
}

/** The running stack's SUBGRAPH_SECRET: the environment's, else the one `npm start` recorded, else null. */
export function runSubgraphSecret(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.SUBGRAPH_SECRET) return env.SUBGRAPH_SECRET;
  try {
    return readFileSync(RUN_SUBGRAPH_SECRET_FILE, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/**
 * Where {@link freePort} looks: below Linux's ephemeral range (32768–60999), from which the kernel
 * gives every outgoing connection its local port. A port taken from that range, let go, and bound
 * again seconds later (a JVM starting) can meanwhile be the local end of some connection: a
 * clean-clone run lost a test broker's start that way.
 */
const FREE_PORT_RANGE = { from: 20_000, to: 32_700 } as const;

/** Ports handed out by {@link freePort} in any process of this machine, one file each. */
const PORT_RESERVATIONS = path.join(tmpdir(), 'swiftcart-ports');
/** How long a handed-out port is not handed out again. */
const PORT_RESERVATION_MS = 20 * 60_000;

/**
 * Claims `port` for this process for {@link PORT_RESERVATION_MS}, across processes: a port is
 * "free" whenever the server a test gave it to is down, and a test that kills a service to restart
 * it on the same port lost it that way to a test running beside it (npm test runs two files at once).
 */
function reservePort(port: number): boolean {
  mkdirSync(PORT_RESERVATIONS, { recursive: true });
  const file = path.join(PORT_RESERVATIONS, String(port));
  try {
    if (Date.now() - statSync(file).mtimeMs < PORT_RESERVATION_MS) return false;
    rmSync(file, { force: true });
  } catch {
    // No reservation yet.
  }
  try {
    writeFileSync(file, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    return false;
  }
}

/** Whether `port` can be bound on `host` now (it is let go again at once). */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A TCP port that was free on `host` a moment ago, outside the ephemeral range (tests, benches). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const size = FREE_PORT_RANGE.to - FREE_PORT_RANGE.from;
  const start = Math.floor(Math.random() * size);
  for (let i = 0; i < 200; i++) {
    const port = FREE_PORT_RANGE.from + ((start + i * 7_919) % size);
    if (reservePort(port) && (await portFree(port, host))) return port;
  }
  throw new Error(`no free port found between ${FREE_PORT_RANGE.from} and ${FREE_PORT_RANGE.to} on ${host}`);
}

/** Where the storefront's browser tests find Chromium: CHROMIUM_PATH, default Debian's /usr/bin/chromium. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CHROMIUM_PATH || '/usr/bin/chromium';
}

/**
 * Makes sure Chromium is there for the browser tests (playwright-core brings no browser of its
 * own). On a CI image without it, installs Debian's `chromium` with apt-get when running as root;
 * otherwise it throws with the command to run. Not part of {@link ensureInfrastructure}: `npm start`
 * does not need a browser, and only the browser tests call this.
 */
export function ensureChromium(options: { log?: Log; env?: NodeJS.ProcessEnv } = {}): string {
  const executable = chromiumPath(options.env);
  installDebianPackage('chromium', executable, 'the storefront browser tests', options.log, 'set CHROMIUM_PATH');
  return executable;
}

/** The lock that serialises this project's apt-get installs across processes. */
const APT_LOCK = path.join(tmpdir(), 'swiftcart-apt.lock');

/**
 * Makes sure `executable` exists, installing Debian's package `name` with apt-get when it does not
 * and this process is root (as on CI images); otherwise throws with the command to run. `why` says
 * what needs it, `otherwise` what else the user can do.
 */
export function installDebianPackage(name: string, executable: string, why: string, log: Log = () => {}, otherwise?: string): void {
  if (existsSync(executable)) return;
  const canInstall = process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!canInstall) throw new Error(`${executable} is missing: run "apt-get install -y ${name}" as root${otherwise ? `, or ${otherwise}` : ''}`);
  log(`installing ${name} with apt-get (for ${why})...`);
  // policy-rc.d-less images would start a packaged daemon; RUNLEVEL=1 tells invoke-rc.d not to.
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', RUNLEVEL: '1' };
  // Test files run in parallel and may need the same package at once: one installs while the
  // others wait on a lock (util-linux `flock`), then find it there. A foreign apt-get (an
  // unattended upgrade) is waited for through dpkg's own lock timeout.
  const locked = spawnSync('flock', ['--version'], { stdio: 'ignore' }).status === 0;
  const script = `test -e "$1" || { apt-get -o DPkg::Lock::Timeout=600 update && apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$2"; }`;
  const command = locked ? ['flock', APT_LOCK, 'sh', '-c', script, 'install', executable, name] : ['sh', '-c', script, 'install', executable, name];
  const result = spawnSync(command[0], command.slice(1), { stdio: ['ignore', 'ignore', 'inherit'], env });
  if (result.status !== 0) throw new Error(`apt-get install -y --no-install-recommends ${name} failed (exit ${result.status})`);
  if (!existsSync(executable)) throw new Error(`apt-get installed ${name}, but ${executable} does not exist${otherwise ? `; ${otherwise}` : ''}`);
}

function describeDatabases(result: EnsureDatabasesResult): string {
  const parts: string[] = [];
  if (result.created.length) parts.push(`created ${result.created.join(', ')}`);
  if (result.existing.length) parts.push(`present ${result.existing.join(', ')}`);
  return parts.join('; ');
}

// ---------------------------------------------------------------------------------------------
// Command line.

const USAGE = `usage: node scripts/infra.ts <command>

commands:
  up            ensure Kafka, create the service databases, check Redis
  down          stop the local Kafka broker
  status        report Kafka, PostgreSQL databases and Redis (exit 1 if any is down)
  db            create the databases <DB_PREFIX>_<service> that are missing
  redis         PING Redis
  kafka-start   start the local Kafka broker unless one answers
  kafka-stop    stop the local Kafka broker started by kafka-start
  kafka-status  tell whether Kafka answers (exit 1 if not)

environment: KAFKA_BROKERS, DATABASE_URL, DB_PREFIX, REDIS_URL (see platform/src/config.ts)`;

const print: Log = (message) => console.log(`[infra] ${message}`);

async function showKafkaStatus(): Promise<boolean> {
  const status = await kafkaStatus();
  const managed = status.pid !== undefined ? `local broker pid ${status.pid}` : 'no local broker running';
  const data = status.formatted ? `data dir formatted (cluster ${status.clusterId})` : 'data dir not formatted';
  print(`Kafka ${status.answers ? 'answers' : 'does NOT answer'} on ${status.broker}; ${managed}; ${data}`);
  return status.answers;
}

const COMMANDS: Record<string, () => Promise<number>> = {
  async up() {
    await ensureInfrastructure({ log: print });
    return 0;
  },
  async down() {
    const result = await stopKafka({ log: print });
    print(result.stopped ? `Kafka stopped (pid ${result.pid}${result.killed ? ', killed' : ''})` : 'no local Kafka broker was running');
    return 0;
  },
  async 'kafka-start'() {
    const result = await ensureKafka({ log: print });
    print(result.started ? `Kafka started on ${result.broker} (pid ${result.pid})` : `Kafka already answers on ${result.broker}`);
    return 0;
  },
  async 'kafka-stop'() {
    return COMMANDS.down();
  },
  async 'kafka-status'() {
    return (await showKafkaStatus()) ? 0 : 1;
  },
  async db() {
    const result = await ensureDatabases(loadConfig());
    print(`databases: ${describeDatabases(result)}`);
    return 0;
  },
  async redis() {
    const config = loadConfig();
    await checkRedis(config);
    print(`Redis answers at ${config.redisUrl}`);
    return 0;
  },
  async status() {
    const config = loadConfig();
    let ok = await showKafkaStatus();
    try {
      const present = await listDatabases(config);
      const missing = SERVICE_NAMES.map((s) => databaseName(config, s)).filter((name) => !present.includes(name));
      print(
        `PostgreSQL answers; ${missing.length ? `missing databases: ${missing.join(', ')} (run \`npm run db:create\`)` : `all ${present.length} databases present`}`,
      );
      if (missing.length) ok = false;
    } catch (error) {
      print((error as Error).message);
      ok = false;
    }
    try {
      await checkRedis(config);
      print(`Redis answers at ${config.redisUrl}`);
    } catch (error) {
      print((error as Error).message);
      ok = false;
    }
    return ok ? 0 : 1;
  },
};

/** Runs one command line; resolves with the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '-h' || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (!command || rest.length || !Object.hasOwn(COMMANDS, command)) {
    console.error(command ? `unknown command: ${[command, ...rest].join(' ')}\n` : 'no command given\n');
    console.error(USAGE);
    return 2;
  }
  try {
    return await COMMANDS[command]();
  } catch (error) {
    console.error(`[infra] ${command} failed: ${(error as Error).message}`);
    return 1;
  }
}

const entry = process.argv[1] ? path.resolve(process.argv[1]) : '';
if (entry === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
