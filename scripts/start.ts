/**
 * `npm start`: the whole platform on this machine. Brings up what is missing (Kafka, databases),
 * migrates, loads the seed catalogue, starts every service, MailDev, the gateway and the storefront as
 * child processes, and prints where Sandbox is. It supervises them (scripts/supervisor.ts): a
 * child that dies is restarted with backoff, and only repeated crashes in a short window stop the
 * platform. Ctrl-C (or SIGTERM) stops everything it started, cleanly.
 *
 * `npm start -- --no-storefront` leaves the storefront out (the API alone starts sooner).
 * `npm start -- --replicas N` (or REPLICAS=N) runs N processes of every service: replica k (from 0)
 * of a service listens on its port + 20·k, and the gateway spreads its calls over them.
 * `npm start -- --workers` runs each replica as two processes: an api process (SERVICE_ROLE=api)
 * on the replica's port, and a worker (SERVICE_ROLE=worker: relay, consumers, sweeper, with its own
 * database pool) that answers its health probes on that port + 10.
 * `npm start -- --no-zipkin` leaves out the trace backend (Zipkin, ZIPKIN_PORT, default 9411) and
 * tracing with it; `--no-prometheus` leaves out Prometheus (PROMETHEUS_PORT, default 9090).
 * The notification service's e-mail goes to MailDev, a development mail sink with a web inbox
 * (MAILDEV_SMTP_PORT, default 1025; MAILDEV_WEB_PORT, default 1080), unless NOTIFICATION_SMTP_URL
 * names another server or `--no-maildev` leaves it out.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { REPO_ROOT, SERVICE_NAMES, integerVar, isMain, loadConfig, serviceInstances, servesApi, type Config } from '@swiftcart/platform';
import { ensureInfrastructure, removeRunSubgraphSecret, stopKafka, writeRunSubgraphSecret } from './infra.ts';
import { migrateAll } from './migrate.ts';
import { seed, SEED_PRODUCT_COUNT } from './seed.ts';
import {
  DEFAULT_PROMETHEUS_PORT,
  DEFAULT_ZIPKIN_PORT,
  ensurePrometheus,
  ensureZipkinJar,
  prometheusCommand,
  writePrometheusConfig,
  zipkinCommand,
} from './observability.ts';
import { Supervisor, describeExit } from './supervisor.ts';

/** Where each child's output goes: LOG_DIR, default .data/logs (relative paths from the repository root). */
const LOG_DIR = path.resolve(REPO_ROOT, process.env.LOG_DIR || path.join('.data', 'logs'));
const READY_TIMEOUT_MS = 60_000;
/** Log lines at these levels are echoed to the terminal; everything goes to the log files. */
const ECHOED_LEVELS = new Set(['warn', 'error', 'fatal']);
const MAX_REPLICAS = 8;

/** One process `npm start` runs: its log file outlives its restarts. */
interface Child {
  readonly name: string;
  readonly logFile: string;
  readonly log: WriteStream;
}

const say = (message: string) => console.log(`[start] ${message}`);

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** The log file's name as the terminal shows it: relative to the working directory when inside it. */
function shownPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}

function newChild(name: string): Child {
  const logFile = path.join(LOG_DIR, `${name}.log`);
  return { name, logFile, log: createWriteStream(logFile, { flags: 'a' }) };
}

/** Starts one process of `child`, its output to the child's log and warnings and errors to the terminal. */
/** A program `npm start` runs: one of ours (JSON lines, warnings echoed) or another's (logged only). */
interface Program {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** True for our own processes, whose JSON log lines at warn and above reach the terminal. */
  readonly ours: boolean;
}

function spawnProcess(child: Child, program: Program): ChildProcess {
  const spawned = spawn(program.command, [...program.args], { cwd: REPO_ROOT, env: { ...process.env, ...program.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.on('error', (error) => say(`${child.name} could not be started: ${error.message}`));
  for (const stream of [spawned.stdout!, spawned.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      child.log.write(`${line}\n`);
      if (!program.ours) return;
      let level: string | undefined;
      try {
        level = JSON.parse(line).level;
      } catch {
        level = 'warn';
      }
      if (level && ECHOED_LEVELS.has(level)) console.log(`[${child.name}] ${line}`);
    });
  }
  return spawned;
}

/** One of our entry points (a service, the gateway, the storefront) on this Node. */
function nodeProgram(entry: string, env: NodeJS.ProcessEnv): Program {
  return { command: process.execPath, args: [path.join(REPO_ROOT, entry)], env, ours: true };
}

/** Resolves once `url` answers; throws when `process` exits first or the time is up. */
async function waitReady(name: string, logFile: string, process: ChildProcess, url: string, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (process.exitCode !== null || process.signalCode !== null) {
      throw new Error(`${name} exited (${describeExit({ code: process.exitCode, signal: process.signalCode })}) during start-up; see ${shownPath(logFile)}`);
    }
    if (await answers(url)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} was not ready at ${url} within ${timeoutMs / 1000} s; see ${shownPath(logFile)}`);
}

/** What `npm start -- ...` was asked for. */
export interface StartOptions {
  /** Processes of each service: `--replicas N`, else REPLICAS, default 1. */
  readonly replicas: number;
  /** True with `--workers`: consumers and relays in worker processes apart from the API's. */
  readonly workers: boolean;
  /** False with `--no-storefront`. */
  readonly storefront: boolean;
  /** False with `--no-zipkin`: no trace backend, and the processes do not trace. */
  readonly zipkin: boolean;
  /** False with `--no-prometheus`. */
  readonly prometheus: boolean;
  /** False with `--no-maildev`: e-mail goes to NOTIFICATION_SMTP_URL, or nowhere (retried, then FAILED). */
  readonly maildev: boolean;
}

/** Reads `npm start`'s arguments; throws (naming the problem) on an unknown or malformed one. */
export function startOptions(argv: readonly string[], env: NodeJS.ProcessEnv): StartOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      replicas: { type: 'string' },
      workers: { type: 'boolean' },
      'no-storefront': { type: 'boolean' },
      'no-zipkin': { type: 'boolean' },
      'no-prometheus': { type: 'boolean' },
      'no-maildev': { type: 'boolean' },
    },
    strict: true,
  });
  return {
    replicas: integerVar(values.replicas === undefined ? env : { REPLICAS: values.replicas }, 'REPLICAS', 1, 1, MAX_REPLICAS),
    workers: Boolean(values.workers),
    storefront: !values['no-storefront'],
    zipkin: !values['no-zipkin'],
    prometheus: !values['no-prometheus'],
    maildev: !values['no-maildev'],
  };
}

/** The storefront's port: STOREFRONT_PORT, default 5173 (Vite's usual port). */
function storefrontPort(): number {
  return Number(process.env.STOREFRONT_PORT || 5173);
}

function origin(config: Config, port: number): string {
  return `http://${config.host}:${port}`;
}

/**
 * The origins a browser shows for the storefront: on a loopback or wildcard address localhost,
 * 127.0.0.1 and [::1], since a person may type any of them (as gateway/src/origins.ts does for its own).
 */
export function storefrontOrigins(host: string, port: number): string[] {
  if (['127.0.0.1', 'localhost', '0.0.0.0', '::', '::1'].includes(host))
    return [`http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`];
  return [`http://${host.includes(':') ? `[${host}]` : host}:${port}`];
}

/** A comma-separated setting from the environment (ALLOWED_ORIGINS, TRUSTED_PROXIES) with `extra` added, without repeats. */
export function mergeList(fromEnv: string | undefined, extra: readonly string[]): string {
  const listed = (fromEnv ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  return [...new Set([...listed, ...extra])].join(',');
}

async function main(): Promise<number> {
  const config = loadConfig();
  let options: StartOptions;
  try {
    options = startOptions(process.argv.slice(2), process.env);
  } catch (error) {
    console.error(`[start] ${(error as Error).message}`);
    return 2;
  }
  const { storefront: withStorefront } = options;
  if (await answers(`${origin(config, config.gatewayPort)}/healthz`)) {
    console.error(`[start] something already answers on port ${config.gatewayPort}: is SwiftCart running already? Stop it or set GATEWAY_PORT.`);
    return 1;
  }
  mkdirSync(LOG_DIR, { recursive: true });
  say('checking infrastructure (Redis, PostgreSQL, Kafka)...');
  const infra = await ensureInfrastructure({ log: say });
  // The gateway's credential towards the subgraphs: one per run unless the environment fixes it,
  // so no well-known value ever lets a local process skip the gateway.
  const subgraphSecret = process.env.SUBGRAPH_SECRET || randomBytes(32).toString('hex');
  writeRunSubgraphSecret(subgraphSecret);
  const children: Child[] = [];
  let stopping = false;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    say(`${reason}: stopping...`);
    await supervisor.stopAll();
    removeRunSubgraphSecret();
    for (const child of children) child.log.end();
    if (infra.kafka.started) {
      say('stopping the Kafka broker this run started...');
      await stopKafka();
    }
    say('stopped');
    process.exit(code);
  };
  const supervisor = new Supervisor({
    say,
    onGiveUp: () => void shutdown('giving up', 1),
  });
  /** Starts `name` under supervision; after a restart the terminal says when it answers again. */
  const supervise = (name: string, entry: string | Program, env: NodeJS.ProcessEnv, readyUrl: string): ChildProcess => {
    if (stopping) throw new Error('stopping');
    const child = newChild(name);
    children.push(child);
    const program = typeof entry === 'string' ? nodeProgram(entry, { ...tracingEnv, ...env }) : entry;
    return supervisor.start({
      name,
      logFile: shownPath(child.logFile),
      spawn: () => spawnProcess(child, program),
      onRestarted: (restarted) => {
        const since = Date.now();
        waitReady(name, child.logFile, restarted, readyUrl).then(
          () => {
            if (!stopping) say(`${name} answers again (pid ${restarted.pid}, ready in ${((Date.now() - since) / 1000).toFixed(1)} s)`);
          },
          // An exit is the supervisor's to report; only a restart that hangs is said here.
          () => {
            if (!stopping && restarted.exitCode === null && restarted.signalCode === null)
              say(`${name} (pid ${restarted.pid}) is not ready ${READY_TIMEOUT_MS / 1000} s after its restart; see ${shownPath(child.logFile)}`);
          },
        );
      },
    });
  };
  process.on('SIGINT', () => void shutdown('Ctrl-C', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  let storefront: string | null = null;
  let zipkin: string | null;
  let prometheus: string | null = null;
  let mail: MailSink | null = null;
  // Where every process sends its spans: this run's Zipkin, unless the environment says otherwise.
  const zipkinPort = integerVar(process.env, 'ZIPKIN_PORT', DEFAULT_ZIPKIN_PORT, 1);
  const tracingEnv: NodeJS.ProcessEnv = options.zipkin
    ? {
        OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER || 'zipkin',
        OTEL_EXPORTER_ZIPKIN_ENDPOINT: process.env.OTEL_EXPORTER_ZIPKIN_ENDPOINT || `http://127.0.0.1:${zipkinPort}/api/v2/spans`,
      }
    : { OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER || 'none' };
  try {
    // Zipkin's JVM takes a while to start: it starts first, and is waited for last.
    const zipkinStarted = options.zipkin ? startZipkin(zipkinPort, supervise, supervisor) : Promise.resolve(null);
    // The notification service sends to the sink from its first event on.
    if (options.maildev && !process.env.NOTIFICATION_SMTP_URL) mail = await startMaildev(config, supervise, supervisor);
    say(`migrating the ${SERVICE_NAMES.length} service databases...`);
    await migrateAll(config);
    const inserted = await seed(config);
    say(
      `seed catalogue: ${SEED_PRODUCT_COUNT} products (${inserted.products} new), stock for each (${inserted.stock} new)` +
        (inserted.reannounced ? `; ${inserted.reannounced} re-announced to the price replicas (order, cart)` : ''),
    );
    const instances = serviceInstances(options, config.servicePorts);
    for (const { name, service, port } of instances) {
      if (await answers(`${origin(config, port)}/healthz`)) throw new Error(`port ${port} (${name}) is taken; set ${service.toUpperCase()}_PORT`);
    }
    // The supergraph names the default ports; a service moved with <NAME>_PORT, or run as
    // replicas, must be found there: by the gateway, and by a service that calls another (cart).
    const subgraphUrls = Object.fromEntries(
      SERVICE_NAMES.map((n) => [
        `${n.toUpperCase()}_URL`,
        (config.subgraphUrls[n] ?? instances.filter((i) => i.service === n && servesApi(i.role)).map((i) => `${origin(config, i.port)}/graphql`)).join(','),
      ]),
    );
    const services = instances.map(({ name, service, role, port }) => {
      const readyUrl = `${origin(config, port)}/readyz`;
      const env = {
        ...subgraphUrls,
        ...(mail ? { NOTIFICATION_SMTP_URL: mail.smtpUrl } : {}),
        SUBGRAPH_SECRET: subgraphSecret,
        SERVICE_ROLE: role,
        [`${service.toUpperCase()}_PORT`]: String(port),
      };
      return { name, port, readyUrl, process: supervise(name, `subgraphs/${service}/src/main.ts`, env, readyUrl) };
    });
    await Promise.all(services.map((s) => waitReady(s.name, path.join(LOG_DIR, `${s.name}.log`), s.process, s.readyUrl)));
    say(`subgraphs ready: ${services.map((s) => `${s.name} :${s.port} (pid ${s.process.pid})`).join(', ')}`);
    const gatewayReady = `${origin(config, config.gatewayPort)}/readyz`;
    const gateway = supervise(
      'gateway',
      'gateway/src/main.ts',
      {
        ...subgraphUrls,
        SUBGRAPH_SECRET: subgraphSecret,
        // The storefront proxies the browser's requests, Origin header included.
        ALLOWED_ORIGINS: mergeList(process.env.ALLOWED_ORIGINS, withStorefront ? storefrontOrigins(config.host, storefrontPort()) : []),
        // ...and appends the browser's address to X-Forwarded-For, which the gateway believes of
        // loopback peers only: on a developer's machine any local process could claim an address.
        ...(withStorefront ? { TRUSTED_PROXIES: mergeList(process.env.TRUSTED_PROXIES, ['127.0.0.1', '::1']) } : {}),
      },
      gatewayReady,
    );
    await waitReady('gateway', path.join(LOG_DIR, 'gateway.log'), gateway, gatewayReady);
    say(`gateway ready: :${config.gatewayPort} (pid ${gateway.pid})`);
    // The storefront (clients/storefront) is a convenience: if it cannot start (port taken, build
    // failed), the API still runs and the terminal says why.
    if (withStorefront) storefront = await startStorefront(config, supervise, supervisor);
    if (options.prometheus) {
      const targets = [config.gatewayPort, ...instances.map((i) => i.port)].map((port) => `${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`);
      prometheus = await startPrometheus(config, targets, supervise, supervisor);
    }
    zipkin = await zipkinStarted;
  } catch (error) {
    console.error(`[start] ${(error as Error).message}`);
    await shutdown('start-up failed', 1);
    return 1;
  }
  // From here on a child that dies is restarted.
  supervisor.supervise();
  const gatewayUrl = `${origin(config, config.gatewayPort)}/graphql`;
  console.log(`
  SwiftCart is running.

  Apollo Sandbox   ${origin(config, config.gatewayPort)}/
  GraphiQL         ${origin(config, config.gatewayPort)}/graphiql (offline, served by the gateway)
  GraphQL (HTTP)   ${gatewayUrl}
  Subscriptions    ${gatewayUrl.replace(/^http/, 'ws')} (graphql-ws)
  Storefront       ${storefront ?? (withStorefront ? `not running (see ${shownPath(path.join(LOG_DIR, 'storefront.log'))})` : 'not started (--no-storefront)')}
  Metrics          ${origin(config, config.gatewayPort)}/metrics (every process has its own /metrics)
  Prometheus       ${prometheus ?? (options.prometheus ? `not running (see ${shownPath(path.join(LOG_DIR, 'prometheus.log'))} or the lines above)` : 'not started (--no-prometheus)')}
  Traces (Zipkin)  ${zipkin ?? (options.zipkin ? `not running (see ${shownPath(path.join(LOG_DIR, 'zipkin.log'))})` : 'not started (--no-zipkin)')}
  Mail (MailDev)   ${mailLine(mail, options)}
  Logs             ${shownPath(LOG_DIR)}/<service>.log
  Admin token      npm run token -- --sub admin --roles admin

  A process that dies is restarted; five crashes of one within a minute stop everything.
  Press Ctrl-C to stop everything.
`);
  return 0;
}

type Supervise = (name: string, entry: string | Program, env: NodeJS.ProcessEnv, readyUrl: string) => ChildProcess;

/** A development mail sink this run started: where mail goes in, and where people read it. */
interface MailSink {
  readonly smtpUrl: string;
  readonly webUrl: string;
}

/** The banner's line about e-mail. */
function mailLine(mail: MailSink | null, options: StartOptions): string {
  if (mail) return `${mail.webUrl} (web inbox; SMTP ${mail.smtpUrl})`;
  if (process.env.NOTIFICATION_SMTP_URL) return `not started: e-mail goes to NOTIFICATION_SMTP_URL`;
  return options.maildev ? `not running (see ${shownPath(path.join(LOG_DIR, 'maildev.log'))})` : 'not started (--no-maildev)';
}

/**
 * Starts MailDev (npm package `maildev`), the development SMTP server whose web inbox shows every
 * e-mail the notification service sends; resolves with its addresses, or null (saying why) when it
 * cannot start: then mail is retried and, after its attempts, FAILED.
 */
async function startMaildev(config: Config, supervise: Supervise, supervisor: Supervisor): Promise<MailSink | null> {
  const smtpPort = integerVar(process.env, 'MAILDEV_SMTP_PORT', 1025, 1);
  const webPort = integerVar(process.env, 'MAILDEV_WEB_PORT', 1080, 1);
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const sink = { smtpUrl: `smtp://${host}:${smtpPort}`, webUrl: `${origin(config, webPort)}/` };
  if (await answers(`http://${host}:${webPort}/api/healthz`)) {
    say(`a MailDev already answers on port ${webPort}: e-mail goes to it`);
    return sink;
  }
  const binary = path.join(REPO_ROOT, 'node_modules', 'maildev', 'dist', 'bin', 'maildev.js');
  const args = [binary, '--smtp', String(smtpPort), '--ip', config.host, '--web', String(webPort), '--web-ip', config.host];
  try {
    const child = supervise('maildev', { command: process.execPath, args, env: {}, ours: false }, {}, `http://${host}:${webPort}/api/healthz`);
    await waitReady('maildev', path.join(LOG_DIR, 'maildev.log'), child, `http://${host}:${webPort}/api/healthz`);
    return sink;
  } catch (error) {
    say(`MailDev did not start: ${(error as Error).message}`);
    supervisor.forget('maildev');
    return null;
  }
}

/**
 * Starts Zipkin's server (scripts/observability.ts) and resolves with its UI's address once it
 * answers, or null (saying why) when it cannot start: the platform runs without a trace viewer.
 */
async function startZipkin(port: number, supervise: Supervise, supervisor: Supervisor): Promise<string | null> {
  const base = `http://127.0.0.1:${port}`;
  if (await answers(`${base}/health`)) {
    say(`a Zipkin already answers on port ${port}: the processes send their spans there`);
    return `${base}/zipkin/`;
  }
  try {
    const jar = await ensureZipkinJar(say);
    const { command, args, env } = zipkinCommand(jar, port);
    const child = supervise('zipkin', { command, args, env, ours: false }, {}, `${base}/health`);
    await waitReady('zipkin', path.join(LOG_DIR, 'zipkin.log'), child, `${base}/health`, 120_000);
    return `${base}/zipkin/`;
  } catch (error) {
    say(`Zipkin did not start: ${(error as Error).message}`);
    supervisor.forget('zipkin');
    return null;
  }
}

/**
 * Starts Prometheus (installed with apt-get on first use where this process may) scraping
 * `targets` with the platform's alert rules; resolves with its address, or null (saying why).
 */
async function startPrometheus(config: Config, targets: readonly string[], supervise: Supervise, supervisor: Supervisor): Promise<string | null> {
  const port = integerVar(process.env, 'PROMETHEUS_PORT', DEFAULT_PROMETHEUS_PORT, 1);
  const url = `${origin(config, port)}/`;
  if (await answers(`${url}-/ready`)) {
    say(`something already answers on port ${port}, so Prometheus is not started; set PROMETHEUS_PORT`);
    return null;
  }
  const binary = ensurePrometheus(say);
  if (!binary) return null;
  const home = path.join(REPO_ROOT, '.data', 'prometheus');
  const configFile = writePrometheusConfig(home, targets);
  const { command, args } = prometheusCommand(binary, configFile, path.join(home, 'data'), config.host, port);
  try {
    const child = supervise('prometheus', { command, args, env: {}, ours: false }, {}, `${url}-/ready`);
    await waitReady('prometheus', path.join(LOG_DIR, 'prometheus.log'), child, `${url}-/ready`);
    return url;
  } catch (error) {
    say(`Prometheus did not start: ${(error as Error).message}`);
    supervisor.forget('prometheus');
    return null;
  }
}

/**
 * Starts the storefront web app (clients/storefront/server.ts: the Vite build plus a /graphql
 * proxy to the gateway). Resolves to its address, or null when it could not start; then it is
 * left stopped rather than restarted.
 */
async function startStorefront(
  config: Config,
  supervise: (name: string, entry: string, env: NodeJS.ProcessEnv, readyUrl: string) => ChildProcess,
  supervisor: Supervisor,
): Promise<string | null> {
  const url = `${origin(config, storefrontPort())}/`;
  if (await answers(`${url}healthz`)) {
    say(`port ${storefrontPort()} is taken, so the storefront is not started; set STOREFRONT_PORT`);
    return null;
  }
  const child = supervise(
    'storefront',
    'clients/storefront/server.ts',
    {
      STOREFRONT_PORT: String(storefrontPort()),
      STOREFRONT_GATEWAY_URL: origin(config, config.gatewayPort),
      // The storefront calls the gateway like any browser; the subgraphs' credential is none of its business.
      SUBGRAPH_SECRET: undefined,
    },
    `${url}healthz`,
  );
  try {
    // The first start builds the bundle with Vite, which takes a few seconds.
    await waitReady('storefront', path.join(LOG_DIR, 'storefront.log'), child, `${url}healthz`);
    return url;
  } catch (error) {
    say(`the storefront did not start: ${(error as Error).message}`);
    supervisor.forget('storefront');
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return null;
  }
}

if (isMain(import.meta.url)) {
  const code = await main();
  if (code !== 0) process.exit(code);
}
