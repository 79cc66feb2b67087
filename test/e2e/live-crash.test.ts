/**
 * Live updates follow committed changes even when the process that made a change dies before it
 * could announce it (ADR 0016). An api process of inventory (a child, SERVICE_ROLE=api, so it runs
 * no relay) is told to die with SIGKILL right after its adjustStock commits
 * (TEST_CRASH_AT=after-commit). A client subscribed through the gateway to the in-process inventory
 * must still see the new figure: the live change was written to the outbox with the adjustment, and
 * the in-process inventory's relay announces it. Before live changes went through the outbox, the
 * subscriber stayed on the old figure until the next change.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT, TEST_CRASH_AT } from '@swiftcart/platform';
import { freePort } from '../../scripts/infra.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { type TestStack, childServiceEnv, postGraphQL, startStack } from '../support/stack.ts';
import { type LiveClient, connectLive } from '../support/subscriptions.ts';
import { waitFor } from '../support/saga.ts';

const SKU = 'CRASH-1';
const STOCK = `subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku onHand available version } }`;
const ADJUST = `mutation Adjust($sku: ID!, $delta: Int!) { adjustStock(sku: $sku, delta: $delta, reason: "crash test") { onHand version } }`;

describe('a crash between commit and live announcement', () => {
  let stack: TestStack;
  let client: LiveClient;
  let child: ChildProcess | undefined;
  const output: string[] = [];

  before(async () => {
    stack = await startStack({ services: ['product', 'inventory'], gateway: true });
    await seedProducts(stack.services.product!.runtime.db.fork(), [
      { sku: SKU, name: 'Crash test', description: 'crash test product', priceAmount: 100, currency: 'EUR' },
    ]);
    await seedStock(stack.services.inventory!.runtime.db.fork(), [{ sku: SKU, onHand: 50 }]);
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await client?.close();
    await stack?.close();
  });

  it('still reaches the subscriber: the relay announces what the dead process committed', { timeout: 60_000 }, async () => {
    client = connectLive(stack.gateway!.url);
    const sub = client.subscribe(STOCK, { skus: [SKU] });
    const first = await sub.waitFor((r) => r.data?.stockLevelChanged.onHand === 50, 'the current level');

    const { config } = stack;
    const port = await freePort();
    child = spawn(process.execPath, [path.join(REPO_ROOT, 'subgraphs/inventory/src/main.ts')], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...childServiceEnv(config),
        LOG_LEVEL: 'warn',
        SERVICE_ROLE: 'api',
        INVENTORY_PORT: String(port),
        [TEST_CRASH_AT]: 'after-commit',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child!.once('exit', (_code, signal) => resolve(signal)));
    const url = `http://127.0.0.1:${port}/graphql`;
    await waitFor(
      async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok ? true : undefined),
      'the api process to be ready',
      30_000,
      () => output.slice(-5),
    );

    const admin = await stack.token('root', ['admin']);
    await assert.rejects(postGraphQL(url, ADJUST, { sku: SKU, delta: -7 }, admin, stack.subgraphHeaders), 'the process died before answering');
    assert.equal(await exited, 'SIGKILL');
    const [row] = await stack.services.inventory!.runtime.db.fork().execute<{ on_hand: number }[]>('select on_hand from stock where sku = ?', [SKU]);
    assert.equal(row.on_hand, 43, 'the adjustment committed before the crash');

    const announced = await sub.waitFor((r) => r.data?.stockLevelChanged.onHand === 43, 'the committed figure, announced by the relay', 15_000);
    assert.ok(announced.data.stockLevelChanged.version > first.data.stockLevelChanged.version);
    assert.equal(announced.data.stockLevelChanged.available, 43);
  });
});
