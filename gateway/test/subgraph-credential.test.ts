/**
 * Subgraphs trust only the gateway (issue 9, item 8): with SUBGRAPH_SECRET set, a subgraph answers
 * 401 GATEWAY_CREDENTIAL_REQUIRED to any request, HTTP or graphql-ws upgrade, that lacks the
 * `x-swiftcart-gateway-secret` header or carries a wrong one; its probes stay open; users' tokens
 * are still verified. The gateway sends the credential on queries, entity fetches, its readiness
 * check and its upstream subscriptions. Without the secret (outside production) a subgraph accepts
 * anyone and warns at start-up. Real product and inventory subgraphs, real clients.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import path from 'node:path';
import WebSocket from 'ws';
import { GATEWAY_CREDENTIAL_HEADER, REPO_ROOT, signToken } from '@swiftcart/platform';
import { isolatedConfig, postGraphQL, startStack, type TestStack } from '../../test/support/stack.ts';
import { connectLive, type LiveClient } from '../../test/support/subscriptions.ts';
import { dropDatabases, ensureDatabases } from '../../scripts/infra.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { seedCatalogue } from '../../scripts/seed.ts';
import { startGateway } from '../src/gateway.ts';

const PRODUCTS = `query Products { products(first: 3) { edges { node { sku name stock { available } } } } }`;
const STOCK = `subscription { stockLevelChanged(skus: ["SKU-0001"]) { sku available } }`;
const CODE = 'GATEWAY_CREDENTIAL_REQUIRED';

/** What a WebSocket upgrade got: 101 (then closed by us) or the refusal's status and JSON body. */
async function upgrade(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body?: any }> {
  const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      socket.close();
      resolve({ status: 101 });
    });
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    socket.once('error', reject);
  });
}

describe('subgraphs with SUBGRAPH_SECRET set', () => {
  let stack: TestStack;
  let productUrl: string;
  let inventoryUrl: string;
  const clients: LiveClient[] = [];
  const catalogue = seedCatalogue(3);

  before(async () => {
    stack = await startStack({ services: ['product', 'inventory'], gateway: true });
    productUrl = stack.services.product!.url;
    inventoryUrl = stack.services.inventory!.url;
    await seedProducts(stack.services.product!.runtime.db.fork(), catalogue.products);
    await seedStock(stack.services.inventory!.runtime.db.fork(), catalogue.stock);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  const secret = () => stack.config.subgraphSecret!;
  /** Wrong credentials: another secret of the same length, a prefix, a longer one, an empty one. */
  const wrong = () => [`${secret().slice(0, -1)}${secret().endsWith('A') ? 'B' : 'A'}`, secret().slice(0, 32), `${secret()}x`, ''];

  test('an HTTP request without the credential, or with a wrong one, is refused with 401 before it runs', async () => {
    for (const url of [productUrl, inventoryUrl]) {
      const anonymous = await postGraphQL(url, '{ __typename }');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.data, undefined);
      assert.equal(anonymous.errors?.[0].extensions?.code, CODE);
      assert.match(anonymous.errors![0].message, /x-swiftcart-gateway-secret/);
      for (const value of wrong()) {
        const result = await postGraphQL(url, '{ __typename }', undefined, null, { [GATEWAY_CREDENTIAL_HEADER]: value });
        assert.equal(result.status, 401, `"${value}"`);
        assert.equal(result.errors?.[0].extensions?.code, CODE);
      }
    }
    // GET, any path, and a valid user token change nothing: the credential is the gateway's, not the user's.
    const admin = await stack.token('root', ['admin']);
    const get = await fetch(`${productUrl}?query=${encodeURIComponent('{ __typename }')}`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(get.status, 401);
    assert.equal(((await get.json()) as any).errors[0].extensions.code, CODE);
    assert.equal((await fetch(new URL('/elsewhere', productUrl))).status, 401);
    // Node joins a repeated header into one value: that is no credential either.
    const twice = new Headers({ 'content-type': 'application/json' });
    twice.append(GATEWAY_CREDENTIAL_HEADER, secret());
    twice.append(GATEWAY_CREDENTIAL_HEADER, secret());
    assert.equal((await fetch(productUrl, { method: 'POST', headers: twice, body: '{"query":"{ __typename }"}' })).status, 401);
  });

  test('/healthz and /readyz stay open to probes without the credential', async () => {
    const origin = new URL(productUrl).origin;
    assert.equal((await fetch(`${origin}/healthz`)).status, 200);
    const ready = await fetch(`${origin}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as any).status, 'ready');
  });

  test('with the credential, the subgraph serves the request and still verifies the user token', async () => {
    const ok = await stack.graphql('{ __typename }', { url: productUrl });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.data, { __typename: 'Query' });
    const forged = await signToken('a-secret-that-is-not-this-stacks-jwt-secret', { sub: 'mallory', roles: ['admin'] });
    const refused = await stack.graphql('{ __typename }', { url: productUrl, token: forged });
    assert.equal(refused.status, 401);
    assert.equal(refused.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    // The credential is not a role: an anonymous admin mutation is still FORBIDDEN.
    const mutation = await stack.graphql('mutation { discontinueProduct(sku: "SKU-0001") { sku } }', { url: productUrl });
    assert.equal(mutation.errors?.[0].extensions?.code, 'FORBIDDEN');
  });

  test('a graphql-ws upgrade without the credential, or with a wrong one, gets 401 and no socket', async () => {
    const refused = await upgrade(inventoryUrl);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.errors[0].extensions.code, CODE);
    for (const value of wrong().filter(Boolean)) {
      const result = await upgrade(inventoryUrl, { [GATEWAY_CREDENTIAL_HEADER]: value });
      assert.equal(result.status, 401, `"${value}"`);
      assert.equal(result.body.errors[0].extensions.code, CODE);
    }
    assert.equal((await upgrade(inventoryUrl, { [GATEWAY_CREDENTIAL_HEADER]: secret() })).status, 101);
  });

  test('a graphql-ws client with the credential subscribes at the subgraph', async () => {
    const client = connectLive(inventoryUrl, { headers: stack.subgraphHeaders });
    clients.push(client);
    const probe = client.subscribe(STOCK);
    const first = await probe.nextData();
    assert.equal(first.stockLevelChanged.sku, 'SKU-0001');
    assert.equal(first.stockLevelChanged.available, catalogue.stock[0].onHand);
    probe.dispose();
  });

  test('through the gateway, a federated query, its readiness check and a subscription all carry the credential', async () => {
    const result = await stack.graphql(PRODUCTS);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(
      result.data.products.edges.map((e: any) => [e.node.sku, e.node.stock.available]),
      catalogue.products.map((p, i) => [p.sku, catalogue.stock[i].onHand]),
    );
    const ready = await fetch(new URL('/readyz', stack.gateway!.url));
    const report = (await ready.json()) as any;
    assert.equal(report.checks.product.ok, true, JSON.stringify(report));
    assert.equal(report.checks.inventory.ok, true, JSON.stringify(report));
    const client = connectLive(stack.gateway!.url);
    clients.push(client);
    const probe = client.subscribe(STOCK);
    assert.deepEqual(await probe.nextData(), { stockLevelChanged: { sku: 'SKU-0001', available: catalogue.stock[0].onHand } });
    probe.dispose();
  });

  test('a gateway with another secret is not ready, and its queries fail as an internal error that names the cause', async () => {
    const config = isolatedConfig({ SUBGRAPH_SECRET: `${secret()}-but-another` });
    // No reconnection attempts: a refused upgrade would otherwise be retried with backoff.
    await using gateway = await startGateway({
      config,
      port: 0,
      subgraphUrls: { product: productUrl, inventory: inventoryUrl },
      live: { upstreamRetryAttempts: 0 },
    });
    const ready = await fetch(new URL('/readyz', gateway.url));
    assert.equal(ready.status, 503);
    const report = (await ready.json()) as any;
    assert.equal(report.checks.product.ok, false);
    assert.match(report.checks.product.error, /401.*GATEWAY_CREDENTIAL_REQUIRED/);
    const result = await postGraphQL(gateway.url, PRODUCTS);
    assert.equal(result.errors?.[0].extensions?.code, 'INTERNAL_SERVER_ERROR');
    assert.match(result.errors![0].message, /refused the gateway's credential: SUBGRAPH_SECRET differs/);
    const client = connectLive(gateway.url);
    clients.push(client);
    const probe = client.subscribe(STOCK);
    await probe.end(10_000);
    assert.equal(probe.results.filter((r) => r.data).length, 0, 'no stock through a refused upstream');
  });
});

describe('secrets being rotated (docs/deploy.md, "Rotating secrets")', () => {
  // The new credential and signing secret are the stack's; the old ones are still accepted.
  const OLD_SUBGRAPH_SECRET = `old-${randomBytes(24).toString('base64url')}`;
  const OLD_JWT_SECRET = `old-${randomBytes(24).toString('base64url')}`;
  let stack: TestStack;
  const clients: LiveClient[] = [];
  const catalogue = seedCatalogue(3);

  before(async () => {
    stack = await startStack({
      services: ['product', 'inventory'],
      gateway: true,
      env: { SUBGRAPH_PREVIOUS_SECRET: OLD_SUBGRAPH_SECRET, JWT_PREVIOUS_SECRET: OLD_JWT_SECRET },
    });
    await seedProducts(stack.services.product!.runtime.db.fork(), catalogue.products);
    await seedStock(stack.services.inventory!.runtime.db.fork(), catalogue.stock);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  test('a subgraph accepts the new and the old credential, and nothing else', async () => {
    const productUrl = stack.services.product!.url;
    for (const [value, status] of [
      [stack.config.subgraphSecret!, 200],
      [OLD_SUBGRAPH_SECRET, 200],
      [`${OLD_SUBGRAPH_SECRET}x`, 401],
    ] as const) {
      const result = await postGraphQL(productUrl, '{ __typename }', undefined, null, { [GATEWAY_CREDENTIAL_HEADER]: value });
      assert.equal(result.status, status, value);
    }
    assert.equal((await upgrade(stack.services.inventory!.url, { [GATEWAY_CREDENTIAL_HEADER]: OLD_SUBGRAPH_SECRET })).status, 101);
  });

  test('a gateway of the old rollout, sending the old credential, is ready and serves queries and subscriptions', async () => {
    const config = isolatedConfig({ SUBGRAPH_SECRET: OLD_SUBGRAPH_SECRET });
    await using gateway = await startGateway({
      config,
      port: 0,
      subgraphUrls: { product: stack.services.product!.url, inventory: stack.services.inventory!.url },
      live: { upstreamRetryAttempts: 0 },
    });
    const report = (await (await fetch(new URL('/readyz', gateway.url))).json()) as any;
    assert.equal(report.checks.product.ok, true, JSON.stringify(report));
    const result = await postGraphQL(gateway.url, PRODUCTS);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(result.data.products.edges.length, 3);
    const client = connectLive(gateway.url);
    clients.push(client);
    const probe = client.subscribe(STOCK);
    assert.deepEqual(await probe.nextData(), { stockLevelChanged: { sku: 'SKU-0001', available: catalogue.stock[0].onHand } });
    probe.dispose();
  });

  test('tokens signed with the old secret are still accepted, by the gateway and the subgraphs; others are not', async () => {
    const me = 'query { products(first: 1) { edges { node { sku } } } }';
    const old = await signToken(OLD_JWT_SECRET, { sub: 'alice', roles: ['customer'] });
    assert.equal((await stack.graphql(me, { token: old })).status, 200);
    assert.equal((await stack.graphql(me, { token: old, url: stack.services.product!.url })).status, 200);
    const stranger = await signToken(`${OLD_JWT_SECRET}-not`, { sub: 'mallory', roles: ['admin'] });
    const refused = await stack.graphql(me, { token: stranger });
    assert.equal(refused.status, 401);
    assert.equal(refused.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    // Over graphql-ws too: the gateway verifies the socket's token with the same secrets.
    const client = connectLive(stack.gateway!.url, { token: old });
    clients.push(client);
    const probe = client.subscribe(STOCK);
    assert.equal((await probe.nextData()).stockLevelChanged.sku, 'SKU-0001');
    probe.dispose();
  });
});

describe('a subgraph without SUBGRAPH_SECRET (development)', () => {
  const config = isolatedConfig({ SUBGRAPH_SECRET: '' });
  before(() => ensureDatabases(config, ['product']));
  after(() => dropDatabases(config, ['product']));

  test('accepts requests without the credential and warns at start-up', async () => {
    assert.equal(config.subgraphSecret, null);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      DB_PREFIX: config.databasePrefix,
      REDIS_PREFIX: config.redisPrefix,
      KAFKA_TOPIC_PREFIX: config.kafkaTopicPrefix,
      PRODUCT_PORT: '0',
    };
    delete env.SUBGRAPH_SECRET;
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'subgraphs/product/src/main.ts')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const warnings: string[] = [];
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          try {
            const entry = JSON.parse(line);
            if (entry.level === 'warn') warnings.push(entry.msg);
            if (entry.msg === 'product subgraph ready') resolve(entry.url);
          } catch {
            /* not a log line */
          }
        });
        setTimeout(() => reject(new Error('the service did not start within 30 s')), 30_000).unref();
      });
      assert.ok(
        warnings.some((w) => /SUBGRAPH_SECRET is unset/.test(w)),
        `warned at start-up: ${JSON.stringify(warnings)}`,
      );
      const result = await postGraphQL(url, '{ __typename }');
      assert.equal(result.status, 200);
      assert.deepEqual(result.data, { __typename: 'Query' });
      assert.equal((await upgrade(url)).status, 101);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    }
  });
});
