/**
 * `npm start`: the whole platform on this machine. Brings up what is missing (Kafka, databases),
 * migrates, loads the seed catalogue, starts the five services and the gateway as child processes,
 * and prints where Sandbox is. Ctrl-C (or SIGTERM) stops everything it started, cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, SERVICE_NAMES, loadConfig, type Config } from '@swiftcart/platform';
import { ensureInfrastructure, stopKafka } from './infra.ts';
import { migrateAll } from './migrate.ts';
import { seed, SEED_PRODUCT_COUNT } from './seed.ts';

const LOG_DIR = path.join(REPO_ROOT, '.data', 'logs');
const READY_TIMEOUT_MS = 60_000;
/** Log lines at these levels are echoed to the terminal; everything goes to .data/logs/. */
const ECHOED_LEVELS = new Set(['warn', 'error', 'fatal']);

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly log: WriteStream;
  readonly exited: Promise<number | null>;
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

function spawnChild(name: string, entry: string, env: NodeJS.ProcessEnv = {}): Child {
  const log = createWriteStream(path.join(LOG_DIR, `${name}.log`), { flags: 'a' });
  const child = spawn(process.execPath, [path.join(REPO_ROOT, entry)], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      log.write(`${line}\n`);
      let level: string | undefined;
      try { level = JSON.parse(line).level; } catch { level = 'warn'; }
      if (level && ECHOED_LEVELS.has(level)) console.log(`[${name}] ${line}`);
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { name, process: child, log, exited };
}

async function waitReady(child: Child, url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exitCode: number | null | undefined;
  void child.exited.then((code) => { exitCode = code; });
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${child.name} exited with code ${exitCode} during start-up; see .data/logs/${child.name}.log`);
    if (await answers(url)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${child.name} was not ready at ${url} within ${READY_TIMEOUT_MS / 1000} s; see .data/logs/${child.name}.log`);
}

async function stopAll(children: Child[]): Promise<void> {
  // The gateway goes first so no request reaches a subgraph that is already gone.
  for (const child of [...children].reverse()) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) continue;
    child.process.kill('SIGTERM');
    const timer = setTimeout(() => child.process.kill('SIGKILL'), 20_000);
    await child.exited;
    clearTimeout(timer);
    child.log.end();
  }
}

/** The storefront's port: STOREFRONT_PORT, default 5173 (Vite's usual port). */
function storefrontPort(): number {
  return Number(process.env.STOREFRONT_PORT || 5173);
}

/**
 * Starts the storefront web app (clients/storefront/server.ts: the Vite build plus a /graphql
 * proxy to the gateway). Resolves to its address, or null when it could not start.
 */
async function startStorefrontChild(config: Config, children: Child[]): Promise<string | null> {
  const url = `${origin(config, storefrontPort())}/`;
  if (await answers(`${url}healthz`)) {
    say(`port ${storefrontPort()} is taken, so the storefront is not started; set STOREFRONT_PORT`);
    return null;
  }
  const child = spawnChild('storefront', 'clients/storefront/server.ts', {
    STOREFRONT_PORT: String(storefrontPort()),
    STOREFRONT_GATEWAY_URL: origin(config, config.gatewayPort),
  });
  children.push(child);
  try {
    // The first start builds the bundle with Vite, which takes a few seconds.
    await waitReady(child, `${url}healthz`);
    return url;
  } catch (error) {
    say(`the storefront did not start: ${(error as Error).message}`);
    return null;
  }
}

function origin(config: Config, port: number): string {
  return `http://${config.host}:${port}`;
}

async function main(): Promise<number> {
  const config = loadConfig();
  if (await answers(`${origin(config, config.gatewayPort)}/healthz`)) {
    console.error(`[start] something already answers on port ${config.gatewayPort}: is SwiftCart running already? Stop it or set GATEWAY_PORT.`);
    return 1;
  }
  mkdirSync(LOG_DIR, { recursive: true });
  say('checking infrastructure (Redis, PostgreSQL, Kafka)...');
  const infra = await ensureInfrastructure({ log: say });
  const children: Child[] = [];
  let storefront: string | null = null;
  let stopping = false;
  const shutdown = async (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    say(`${reason}: stopping...`);
    await stopAll(children);
    if (infra.kafka.started) {
      say('stopping the Kafka broker this run started...');
      await stopKafka();
    }
    say('stopped');
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('Ctrl-C', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  try {
    say('migrating the five service databases...');
    await migrateAll(config);
    const inserted = await seed(config);
    say(`seed catalogue: ${SEED_PRODUCT_COUNT} products (${inserted.products} new), stock for each (${inserted.stock} new)` +
      (inserted.reannounced ? `; ${inserted.reannounced} re-announced to the order service's price replica` : ''));
    for (const name of SERVICE_NAMES) {
      if (await answers(`${origin(config, config.servicePorts[name])}/healthz`)) throw new Error(`port ${config.servicePorts[name]} (${name}) is taken; set ${name.toUpperCase()}_PORT`);
    }
    const services = SERVICE_NAMES.map((name) => spawnChild(name, `subgraphs/${name}/src/main.ts`));
    children.push(...services);
    await Promise.all(services.map((child) => waitReady(child, `${origin(config, config.servicePorts[child.name as (typeof SERVICE_NAMES)[number]])}/readyz`)));
    say(`subgraphs ready: ${SERVICE_NAMES.map((n) => `${n} :${config.servicePorts[n]}`).join(', ')}`);
    // The supergraph names the default ports; a service moved with <NAME>_PORT must be found there.
    const subgraphUrls = Object.fromEntries(SERVICE_NAMES.map((n) => [`${n.toUpperCase()}_URL`, config.subgraphUrls[n] ?? `${origin(config, config.servicePorts[n])}/graphql`]));
    const gateway = spawnChild('gateway', 'gateway/src/main.ts', subgraphUrls);
    children.push(gateway);
    await waitReady(gateway, `${origin(config, config.gatewayPort)}/readyz`);
    // The storefront (clients/storefront) is a convenience: if it cannot start (port taken, build
    // failed), the API still runs and the terminal says why.
    storefront = await startStorefrontChild(config, children);
  } catch (error) {
    console.error(`[start] ${(error as Error).message}`);
    await shutdown('start-up failed', 1);
    return 1;
  }
  for (const child of children) {
    void child.exited.then((code) => {
      if (child.name === 'storefront') {
        if (!stopping) say(`the storefront exited (code ${code}; see .data/logs/storefront.log); the API keeps running`);
        return;
      }
      if (!stopping) void shutdown(`${child.name} exited unexpectedly (code ${code}; see .data/logs/${child.name}.log)`, 1);
    });
  }
  const gatewayUrl = `${origin(config, config.gatewayPort)}/graphql`;
  console.log(`
  SwiftCart is running.

  Apollo Sandbox   ${origin(config, config.gatewayPort)}/
  GraphQL (HTTP)   ${gatewayUrl}
  Subscriptions    ${gatewayUrl.replace(/^http/, 'ws')} (graphql-ws)
  Storefront       ${storefront ?? 'not running (see .data/logs/storefront.log)'}
  Metrics          ${origin(config, config.gatewayPort)}/metrics
  Logs             .data/logs/<service>.log
  Admin token      npm run token -- --sub admin --roles admin

  Press Ctrl-C to stop everything.
`);
  return 0;
}

const code = await main();
if (code !== 0) process.exit(code);
