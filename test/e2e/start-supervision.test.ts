/**
 * `npm start` as a person runs it on a fresh machine: scripts/start.ts as a child process on ports,
 * databases, Redis keys, topics and a log folder of its own, without the storefront
 * (`--no-storefront`), against a Kafka broker just created (a broker of the test's own: no topics,
 * no consumer groups, no `__consumer_offsets` yet).
 * - It starts quietly (issue 18): no warning, error or stack trace in the terminal and nothing
 *   logged at error or above until every consumer group is Stable; the broker's start-up states are said in
 *   words at info instead (platform/src/kafka-log.ts).
 * - A subgraph killed with SIGKILL is restarted, the terminal says so, and the federated query
 *   answers again; Ctrl-C (SIGINT to the whole process group, as a terminal sends it) stops
 *   everything with exit 0.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, GATEWAY_CREDENTIAL_STATUS, SERVICE_NAMES, loadConfig } from '@swiftcart/platform';
import { dropDatabases, listDatabases } from '../../scripts/infra.ts';
import { seedCatalogue } from '../../scripts/seed.ts';
import { Kafka, logLevel } from 'kafkajs';
import { CONSUMER_GROUPS } from '../../scripts/k8s.ts';
import { TestKafkaBroker } from '../support/kafka-broker.ts';
import { postGraphQL } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { type StartedPlatform, startPlatform } from '../support/start.ts';

const PRODUCTS = '{ products(first: 3) { edges { node { sku name stock { available } } } } }';

/** pino's levels that need a person at once, as the processes write them (labels) or as numbers. */
const LOUD = new Set(['error', 'fatal', '50', '60']);

describe('npm start on a fresh machine', () => {
  let kafka: TestKafkaBroker;
  let platform: StartedPlatform;
  let output: () => string;
  let printed: StartedPlatform['printed'];

  /** The first three seed products with their stock, through the gateway (product + inventory). */
  async function federatedAnswer(): Promise<unknown> {
    const result = await postGraphQL(platform.gatewayUrl, PRODUCTS);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.products.edges.map((edge: { node: unknown }) => edge.node);
  }

  const { products, stock } = seedCatalogue(3);
  const expected = products.map((p, i) => ({ sku: p.sku, name: p.name, stock: { available: stock[i].onHand } }));

  before(async () => {
    kafka = await TestKafkaBroker.start();
    // Info, so that what is said in words instead of kafkajs's errors is in the logs.
    platform = await startPlatform({ KAFKA_BROKERS: kafka.broker, LOG_LEVEL: 'info' });
    ({ output, printed } = platform);
  });
  after(async () => {
    await platform?.close();
    await kafka?.[Symbol.asyncDispose]();
  });

  test('starts quietly: no warning or error in the terminal and nothing logged at error until every consumer group is Stable', {
    timeout: 300_000,
  }, async () => {
    // Nine migrations, a seed and ten processes on two cores, beside another test file: a clean-clone
    // run once took past 90 s.
    await printed(/SwiftCart is running\./, 180_000);
    // Starting ends when every consumer group has joined: that is when the coordinator's states come.
    const groups = Object.values(CONSUMER_GROUPS)
      .flat()
      .map((group) => `${platform.env.KAFKA_TOPIC_PREFIX}${group}`);
    const admin = new Kafka({ clientId: 'start-test', brokers: [kafka.broker], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await waitFor(
        async () => (await admin.describeGroups(groups)).groups.every((group) => group.state === 'Stable'),
        `every consumer group (${groups.length}) to be Stable`,
        120_000,
      );
    } finally {
      await admin.disconnect();
    }

    const terminalErrors = output()
      .split('\n')
      .filter((line) => /\bERROR\b|\bWARN\b|"level":"(warn|error|fatal)"|^\s+at .+:\d+:\d+\)?$/.test(line));
    assert.deepEqual(terminalErrors, [], `the terminal printed warnings or errors:\n${output()}`);
    const loud: string[] = [];
    const said = new Set<string>();
    for (const file of readdirSync(platform.logDir)) {
      for (const line of readFileSync(path.join(platform.logDir, file), 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as { level: string | number; msg?: string };
        if (LOUD.has(String(entry.level))) loud.push(`${file}: ${line}`);
        if (/kafkajs retries\)$/.test(entry.msg ?? '')) said.add(entry.msg!);
      }
    }
    // Which states a fresh broker goes through varies from run to run: what was said is only shown.
    assert.deepEqual(loud, [], `a process logged at error or fatal; said in words instead: ${JSON.stringify([...said])}`);
  });

  test('a subgraph killed with SIGKILL is restarted, the terminal says so, and the federated query answers again; Ctrl-C exits 0', {
    timeout: 240_000,
  }, async () => {
    await printed(/SwiftCart is running\./, 180_000);
    // MailDev runs beside the services, and the banner says where its inbox is.
    const { maildevSmtpPort, maildevWebPort, env, logDir, exited } = platform;
    assert.match(
      output(),
      new RegExp(`Mail \\(MailDev\\) +http://127\\.0\\.0\\.1:${maildevWebPort}/ \\(web inbox; SMTP smtp://127\\.0\\.0\\.1:${maildevSmtpPort}\\)`),
    );
    assert.equal((await fetch(`http://127.0.0.1:${maildevWebPort}/api/healthz`)).status, 200);
    // The offline explorer: npm start's gateway builds it when missing or stale, and serves it.
    const explorer = await fetch(new URL('/graphiql', platform.gatewayUrl));
    assert.equal(explorer.status, 200);
    assert.match(await explorer.text(), /<script type="module" nonce="[^"]+" src="graphiql\/assets\/main-[\w-]+\.js"><\/script>/);
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
    assert.doesNotMatch(output(), /giving up|stopping\.\.\./);

    process.kill(-platform.process.pid!, 'SIGINT');
    const { code, signal } = await exited;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, output());
    assert.match(output(), /\[start\] Ctrl-C: stopping\.\.\.\n(.*\n)*\[start\] stopped\n/);
    // Stopping is not a crash: nothing was restarted on the way down.
    assert.equal(output().match(/restarting in/g)?.length, 1);
    // The run wrote its logs where LOG_DIR said, not into the checkout's .data/logs.
    assert.deepEqual(readdirSync(logDir).sort(), [...SERVICE_NAMES, 'gateway', 'maildev'].map((n) => `${n}.log`).sort());
  });

  test('after the run, the databases it created under its own prefix are dropped', async () => {
    const config = loadConfig(platform.env);
    const mine = SERVICE_NAMES.map((s) => `swiftcart_s${platform.id}_${s}`).sort();
    assert.deepEqual(await listDatabases(config), mine);
    assert.deepEqual((await dropDatabases(config)).sort(), mine);
    assert.deepEqual(await listDatabases(config), []);
  });
});
