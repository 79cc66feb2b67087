/**
 * `npm start` as a person runs it: scripts/start.ts as a child process on ports, databases, Redis
 * keys, topics and a log folder of its own, without the storefront (`--no-storefront`). A subgraph
 * killed with SIGKILL is restarted, the terminal says so, and the federated query answers again;
 * Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops everything with exit 0.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, GATEWAY_CREDENTIAL_STATUS, REPO_ROOT, SERVICE_NAMES, loadConfig } from '@swiftcart/platform';
import { dropDatabases, freePort, listDatabases } from '../../scripts/infra.ts';
import { seedCatalogue } from '../../scripts/seed.ts';
import { clearRedisPrefix, postGraphQL } from '../support/stack.ts';
import { fatal, waitFor } from '../support/wait.ts';

const PRODUCTS = '{ products(first: 3) { edges { node { sku name stock { available } } } } }';

describe('npm start supervises its children', () => {
  const id = randomBytes(4).toString('hex');
  const logDir = mkdtempSync(path.join(tmpdir(), 'swiftcart-start-'));
  let env: NodeJS.ProcessEnv;
  let start: ChildProcess;
  let output = '';
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let gatewayUrl: string;
  let maildevSmtpPort: number;
  let maildevWebPort: number;

  /** Resolves with the match once the terminal output matches `pattern`. */
  async function printed(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return waitFor(
      () => {
        const match = pattern.exec(output);
        if (match) return match;
        if (start.exitCode !== null || start.signalCode !== null) throw fatal(`npm start exited before printing ${pattern}:\n${output}`);
        return undefined;
      },
      `npm start to print ${pattern}`,
      timeoutMs,
      () => `\n${output}`,
      100,
    );
  }

  /** The first three seed products with their stock, through the gateway (product + inventory). */
  async function federatedAnswer(): Promise<unknown> {
    const result = await postGraphQL(gatewayUrl, PRODUCTS);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.products.edges.map((edge: { node: unknown }) => edge.node);
  }

  const { products, stock } = seedCatalogue(3);
  const expected = products.map((p, i) => ({ sku: p.sku, name: p.name, stock: { available: stock[i].onHand } }));

  before(async () => {
    const ports = await Promise.all([...SERVICE_NAMES, 'gateway', 'maildev-smtp', 'maildev-web'].map(() => freePort()));
    [maildevSmtpPort, maildevWebPort] = ports.slice(SERVICE_NAMES.length + 1);
    env = {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      GATEWAY_PORT: String(ports[SERVICE_NAMES.length]),
      ...Object.fromEntries(SERVICE_NAMES.map((name, i) => [`${name.toUpperCase()}_PORT`, String(ports[i])])),
      DB_PREFIX: `swiftcart_s${id}`,
      REDIS_PREFIX: `swiftcart-test:${id}:`,
      KAFKA_TOPIC_PREFIX: `test.${id}.`,
      LOG_DIR: logDir,
      // Its own mail sink, away from a developer's `npm start` on 1025 and 1080.
      MAILDEV_SMTP_PORT: String(maildevSmtpPort),
      MAILDEV_WEB_PORT: String(maildevWebPort),
    };
    delete env.NOTIFICATION_SMTP_URL;
    // Whatever the runner's environment routes elsewhere must not leak into this platform.
    for (const name of SERVICE_NAMES) delete env[`${name.toUpperCase()}_URL`];
    delete env.SUBGRAPH_SECRET;
    gatewayUrl = `http://127.0.0.1:${ports[SERVICE_NAMES.length]}/graphql`;
    // Its own process group, so Ctrl-C reaches every process as from a terminal, and a failed test kills them all.
    start = spawn(process.execPath, ['scripts/start.ts', '--no-storefront', '--no-zipkin', '--no-prometheus'], {
      cwd: REPO_ROOT,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    start.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    start.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    exited = new Promise((resolve) => start.once('exit', (code, signal) => resolve({ code, signal })));
  });

  after(async () => {
    if (start?.pid && start.exitCode === null && start.signalCode === null) {
      try {
        process.kill(-start.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await exited;
    }
    const config = loadConfig(env);
    await dropDatabases(config);
    await clearRedisPrefix(config);
    rmSync(logDir, { recursive: true, force: true });
  });

  test('a subgraph killed with SIGKILL is restarted, the terminal says so, and the federated query answers again; Ctrl-C exits 0', {
    timeout: 240_000,
  }, async () => {
    // Nine migrations, a seed and ten processes on two cores, beside another test file: a clean-clone
    // run once took past 90 s.
    await printed(/SwiftCart is running\./, 150_000);
    // MailDev runs beside the services, and the banner says where its inbox is.
    assert.match(
      output,
      new RegExp(`Mail \\(MailDev\\) +http://127\\.0\\.0\\.1:${maildevWebPort}/ \\(web inbox; SMTP smtp://127\\.0\\.0\\.1:${maildevSmtpPort}\\)`),
    );
    assert.equal((await fetch(`http://127.0.0.1:${maildevWebPort}/api/healthz`)).status, 200);
    const ready = await printed(/subgraphs ready: .*inventory :\d+ \(pid (\d+)\)/, 0);
    const inventoryPid = Number(ready[1]);
    assert.deepEqual(await federatedAnswer(), expected);

    // The gateway holds the run's credential and the subgraphs require it: a direct call is refused.
    const direct = await fetch(`http://127.0.0.1:${env.INVENTORY_PORT}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(direct.status, GATEWAY_CREDENTIAL_STATUS);
    assert.equal((await direct.json()).errors[0].extensions.code, ErrorCode.GatewayCredentialRequired);

    process.kill(inventoryPid, 'SIGKILL');
    await printed(/\[start\] inventory exited \(code 137 \/ SIGKILL\); restarting in 1 s \(restart 1\)/, 10_000);
    const restarted = await printed(/\[start\] inventory restarted \(pid (\d+)\)/, 10_000);
    assert.notEqual(Number(restarted[1]), inventoryPid);
    await printed(/\[start\] inventory answers again \(pid \d+, ready in [\d.]+ s\)/, 60_000);
    assert.deepEqual(await federatedAnswer(), expected);
    assert.ok(existsSync(path.join(logDir, 'inventory.log')));
    assert.doesNotMatch(output, /giving up|stopping\.\.\./);

    process.kill(-start.pid!, 'SIGINT');
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, output);
    assert.match(output, /\[start\] Ctrl-C: stopping\.\.\.\n(.*\n)*\[start\] stopped\n/);
    // Stopping is not a crash: nothing was restarted on the way down.
    assert.equal(output.match(/restarting in/g)?.length, 1);
    // The run wrote its logs where LOG_DIR said, not into the checkout's .data/logs.
    assert.deepEqual(readdirSync(logDir).sort(), [...SERVICE_NAMES, 'gateway', 'maildev'].map((n) => `${n}.log`).sort());
  });

  test('after the run, the databases it created under its own prefix are dropped', async () => {
    const config = loadConfig(env);
    const mine = SERVICE_NAMES.map((s) => `swiftcart_s${id}_${s}`).sort();
    assert.deepEqual(await listDatabases(config), mine);
    assert.deepEqual((await dropDatabases(config)).sort(), mine);
    assert.deepEqual(await listDatabases(config), []);
  });
});
