/**
 * The gateways `npm run bench -- gateway` compares, each started as a fresh process of its own,
 * pinned to the gateway core (`taskset -c 0`) when pinning is available, with NODE_ENV=production
 * (how each is deployed; the public benchmark runs Hive Gateway so) and its output in
 * .data/logs/bench-gateway-<name>.log. Every one reads the same supergraph file, whose routing URLs
 * point at the replay server, so none is given routing overrides.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT, SERVICE_NAMES } from '../../platform/src/config.ts';
import { NotReady, freePort } from '../lib.ts';
import type { PlainGatewayMessage } from '../plain-gateway.ts';

/** The gateways, in the order the bench reports them. */
export const GATEWAY_NAMES = ['ours', 'ours-nodedup', 'ours-nobatch', 'plain', 'hive-default', 'hive-public', 'hive-nodedup'] as const;
/** `baseline` runs only when asked for (`--baseline DIR`): ours from another checkout, for before/after figures. */
export type GatewayName = (typeof GATEWAY_NAMES)[number] | 'baseline';

/** One line per gateway for the usage text and the result file. */
export const GATEWAY_DESCRIPTIONS: Readonly<Record<GatewayName, string>> = {
  ours: 'gateway/src/main.ts as deployed: edge limits on, rate limits counting in Redis but raised out of the way',
  'ours-nodedup': 'the same with GATEWAY_DEDUP_INBOUND=off and GATEWAY_DEDUP_SUBGRAPH=off: what in-flight deduplication gives',
  'ours-nobatch': 'the same as ours with GATEWAY_BATCH_ENTITIES=off: what merging concurrent entity fetches gives',
  baseline: 'ours as the checkout given with --baseline DIR has it (e.g. `git worktree add DIR <commit>`), same settings: before/after figures',
  plain: 'ApolloServer + ApolloGateway, every setting at its default (bench/plain-gateway.ts)',
  'hive-default': 'Hive Gateway 2.15.1, its defaults (upstream deduplication on, no JIT, no inbound deduplication)',
  'hive-public': 'Hive Gateway 2.15.1 as the public benchmark runs it: --jit, inbound and upstream deduplication',
  'hive-nodedup': 'Hive Gateway 2.15.1 with --jit and no deduplication, inbound or upstream',
};

const BENCH_DIR = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const HIVE_BIN = path.join(REPO_ROOT, 'node_modules', '@graphql-hive', 'gateway', 'dist', 'bin.js');
const HIVE_CONFIG = path.join(BENCH_DIR, 'hive', 'federation.config.ts');
const LOG_DIR = path.join(REPO_ROOT, '.data', 'logs');

/** A started gateway process. */
export interface GatewayProcess {
  readonly name: GatewayName;
  readonly url: string;
  readonly pid: number;
  readonly logPath: string;
  stop(): Promise<void>;
}

/** How to start a gateway. */
export interface GatewayStart {
  readonly supergraphPath: string;
  /** The command prefix that pins a process to the gateway core, e.g. `taskset -c 0`; null when unavailable. */
  readonly pin: readonly string[] | null;
  /** Extra variables for our gateway (e.g. operation limits raised for the public benchmark's query). */
  readonly oursEnv?: Readonly<Record<string, string>>;
  /** Redis key prefix for our gateway's rate limits. */
  readonly redisPrefix: string;
  /** The checkout `baseline` runs from (its gateway/src/main.ts, with this one's node_modules reachable). */
  readonly baselineDir?: string;
}

/** Far above what one load generator sends: the limiter still counts every request in Redis. */
const OUT_OF_THE_WAY = '100000000';

/**
 * The environment every gateway starts from: this one without what would route, configure or fork
 * it behind the bench's back (Hive reads PORT, HOST, FORK, CONFIG_PATH and JIT; ours the per-service `_URL`s).
 */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production', APOLLO_TELEMETRY_DISABLED: 'true' };
  for (const key of ['PORT', 'HOST', 'FORK', 'CONFIG_PATH', 'JIT', 'SUPERGRAPH_PATH', ...SERVICE_NAMES.map((s) => `${s.toUpperCase()}_URL`)]) delete env[key];
  return env;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Every gateway process started and not yet stopped, so that an interrupted bench can end them. */
const running = new Set<ChildProcess>();

/** SIGKILLs every gateway still running (an interrupted bench). */
export function killGateways(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Starts `node args...` behind `pin`, output to the gateway's log file. */
function spawnGateway(name: GatewayName, pin: readonly string[] | null, args: readonly string[], env: NodeJS.ProcessEnv, ipc = false, cwd = REPO_ROOT) {
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = path.join(LOG_DIR, `bench-gateway-${name}.log`);
  const fd = openSync(logPath, 'w');
  const [command, ...prefix] = pin ? [...pin, process.execPath] : [process.execPath];
  // taskset execs node in place: the pid is the gateway's own, and IPC passes through.
  const child = spawn(command, [...prefix, ...args], { cwd, env, stdio: ['ignore', fd, fd, ...(ipc ? (['ipc'] as const) : [])] });
  closeSync(fd);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return { child, logPath: path.relative(process.cwd(), logPath) };
}

async function stopProcess(child: ChildProcess, ask: () => void): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  ask();
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await gone;
  clearTimeout(timer);
}

/** Polls `url` until it answers 200, or fails naming the log when the process exits or 60 s pass. */
async function waitFor(name: GatewayName, child: ChildProcess, url: string, logPath: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (exited(child)) throw new NotReady(`${name} exited during start-up (${child.signalCode ?? child.exitCode}); see ${logPath}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      async (r) => {
        await r.body?.cancel();
        return r.ok;
      },
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new NotReady(`${name} did not become ready within 60 s; see ${logPath}`);
}

function started(name: GatewayName, child: ChildProcess, url: string, logPath: string, ask: () => void): GatewayProcess {
  return { name, url, pid: child.pid!, logPath, stop: () => stopProcess(child, ask) };
}

async function startOurs(name: 'ours' | 'ours-nodedup' | 'ours-nobatch' | 'baseline', options: GatewayStart): Promise<GatewayProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    GATEWAY_PORT: String(port),
    SUPERGRAPH_PATH: options.supergraphPath,
    // Production refuses to start without both; the replay server ignores the credential.
    JWT_SECRET: randomBytes(32).toString('base64url'),
    SUBGRAPH_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'warn',
    EDGE_LIMITS: 'on',
    REDIS_PREFIX: options.redisPrefix,
    RATE_LIMIT_HTTP_PER_WINDOW: OUT_OF_THE_WAY,
    RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: OUT_OF_THE_WAY,
    // Production traces to OTLP by default; the peers trace nothing, and with no collector here
    // ours would pay for spans (6 % of its CPU in a profile: a URL parsed per subgraph fetch) that go nowhere.
    OTEL_SDK_DISABLED: 'true',
    ...options.oursEnv,
    ...(name === 'ours-nodedup' ? { GATEWAY_DEDUP_INBOUND: 'off', GATEWAY_DEDUP_SUBGRAPH: 'off' } : {}),
    ...(name === 'ours-nobatch' ? { GATEWAY_BATCH_ENTITIES: 'off' } : {}),
  };
  if (name === 'baseline' && !options.baselineDir) throw new NotReady('baseline needs --baseline DIR');
  const root = name === 'baseline' ? options.baselineDir! : REPO_ROOT;
  const { child, logPath } = spawnGateway(name, options.pin, [path.join(root, 'gateway', 'src', 'main.ts')], env, false, root);
  await waitFor(name, child, `http://127.0.0.1:${port}/healthz`, logPath);
  return started(name, child, `http://127.0.0.1:${port}/graphql`, logPath, () => child.kill('SIGTERM'));
}

async function startPlain(options: GatewayStart): Promise<GatewayProcess> {
  const env: NodeJS.ProcessEnv = { ...baseEnv(), BENCH_SUPERGRAPH_PATH: options.supergraphPath };
  delete env.SUBGRAPH_SECRET;
  delete env.BENCH_SUBGRAPH_URLS;
  const { child, logPath } = spawnGateway('plain', options.pin, [path.join(BENCH_DIR, 'plain-gateway.ts')], env, true);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new NotReady(`plain did not start within 60 s; see ${logPath}`)), 60_000);
    child.on('message', (m: PlainGatewayMessage) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolve(m.url.replace(/\/$/, ''));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new NotReady(`plain exited during start-up (${code}); see ${logPath}`));
    });
  });
  return started('plain', child, url, logPath, () => child.send({ type: 'exit' }));
}

async function startHive(name: 'hive-default' | 'hive-public' | 'hive-nodedup', options: GatewayStart): Promise<GatewayProcess> {
  if (!existsSync(HIVE_BIN)) throw new NotReady(`Hive Gateway is not installed (${path.relative(process.cwd(), HIVE_BIN)}); run npm install`);
  const variant = name.slice('hive-'.length);
  const port = await freePort();
  const args = [HIVE_BIN, 'supergraph', options.supergraphPath, '--host', '127.0.0.1', '--port', String(port), '--config-path', HIVE_CONFIG];
  if (variant !== 'default') args.push('--jit');
  const { child, logPath } = spawnGateway(name, options.pin, args, { ...baseEnv(), BENCH_HIVE_VARIANT: variant });
  await waitFor(name, child, `http://127.0.0.1:${port}/readiness`, logPath);
  return started(name, child, `http://127.0.0.1:${port}/graphql`, logPath, () => child.kill('SIGTERM'));
}

/** Starts gateway `name` over `options.supergraphPath`; resolves once it answers. */
export function startGateway(name: GatewayName, options: GatewayStart): Promise<GatewayProcess> {
  switch (name) {
    case 'ours':
    case 'ours-nodedup':
    case 'ours-nobatch':
    case 'baseline':
      return startOurs(name, options);
    case 'plain':
      return startPlain(options);
    default:
      return startHive(name, options);
  }
}
