/**
 * Trusted documents in production (gateway/src/trusted-documents.ts): a gateway with
 * NODE_ENV=production in front of real product and inventory subgraphs runs the operations of
 * schema/trusted-documents.json, by id alone or as text, over HTTP and graphql-ws; refuses any other
 * document, or an unknown id, with PERSISTED_QUERY_NOT_IN_LIST before parsing it; and lets the
 * admins named in TRUSTED_DOCUMENTS_OPERATORS run anything. The SDK, which sends ids, works against
 * it unchanged. Outside production (the stack's own gateway) any document runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '@swiftcart/platform';
import { createClient } from '../../clients/sdk/src/index.ts';
import { trustedDocuments } from '../../scripts/trusted-documents.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { type TestStack, postGraphQL, startStack } from '../../test/support/stack.ts';
import { type LiveClient, connectLive } from '../../test/support/subscriptions.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';
import { NOT_IN_LIST } from '../src/trusted-documents.ts';

const SKU = 'TRUST-1';
const manifest = trustedDocuments();
const listed = (name: string) => manifest.operations.find((operation) => operation.name === name)!;
const UNLISTED = `query Mine { product(sku: "${SKU}") { sku name } }`;

/** POSTs a raw body to `url` with an optional bearer token. */
async function post(url: string, body: unknown, token?: string): Promise<{ status: number; json: any; bytes: number }> {
  const text = JSON.stringify(body);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: text,
  });
  return { status: response.status, json: await response.json(), bytes: Buffer.byteLength(text) };
}

describe('trusted documents in production', () => {
  let stack: TestStack;
  let gateway: RunningGateway;
  const clients: LiveClient[] = [];

  before(async () => {
    stack = await startStack({ services: ['product', 'inventory'], gateway: true, env: { JWT_SECRET: randomBytes(32).toString('hex') } });
    await seedProducts(stack.services.product!.runtime.db.fork(), [
      { sku: SKU, name: 'Trusted', description: 'a product for the trusted documents test', priceAmount: 100, currency: 'EUR' },
    ]);
    await seedStock(stack.services.inventory!.runtime.db.fork(), [{ sku: SKU, onHand: 9 }]);
    const config = loadConfig({ ...stack.config.vars, NODE_ENV: 'production', TRUSTED_DOCUMENTS_OPERATORS: 'ops-1, ops-2', TRUSTED_DOCUMENTS: '' });
    gateway = await startGateway({
      config,
      port: 0,
      subgraphUrls: { product: stack.services.product!.url, inventory: stack.services.inventory!.url },
    });
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gateway?.close();
    await stack?.close();
  });

  test('a listed operation runs by its id alone, or as its text; the id is the smaller request', async () => {
    const product = listed('Product');
    const byId = await post(gateway.url, {
      operationName: 'Product',
      variables: { sku: SKU },
      extensions: { persistedQuery: { version: 1, sha256Hash: product.id } },
    });
    assert.equal(byId.status, 200, JSON.stringify(byId.json));
    assert.equal(byId.json.data.product.name, 'Trusted');
    const asText = await post(gateway.url, { query: product.body, operationName: 'Product', variables: { sku: SKU } });
    assert.deepEqual(asText.json, byId.json);
    // The figures for every operation are in docs/performance.md (npm run bench -- trusted-documents).
    assert.ok(byId.bytes < asText.bytes, `${byId.bytes} bytes by id against ${asText.bytes} as text`);
  });

  test('any other document, or an unknown id, is refused with PERSISTED_QUERY_NOT_IN_LIST', async () => {
    const other = await post(gateway.url, { query: UNLISTED });
    assert.equal(other.status, 400);
    assert.equal(other.json.errors[0].extensions.code, NOT_IN_LIST);
    assert.equal(other.json.data, undefined);
    // A listed document changed by one byte is another document.
    const changed = await post(gateway.url, { query: `${listed('Product').body} `, variables: { sku: SKU } });
    assert.equal(changed.json.errors?.[0].extensions.code, NOT_IN_LIST);
    const unknownId = await post(gateway.url, { extensions: { persistedQuery: { version: 1, sha256Hash: 'f'.repeat(64) } } });
    assert.equal(unknownId.status, 400);
    assert.equal(unknownId.json.errors[0].extensions.code, NOT_IN_LIST);
    const get = await fetch(`${gateway.url}?query=${encodeURIComponent(UNLISTED)}`, { headers: { 'apollo-require-preflight': 'true' } });
    assert.equal(((await get.json()) as any).errors[0].extensions.code, NOT_IN_LIST);
  });

  test('over graphql-ws a listed subscription runs and another document is refused', async () => {
    const client = connectLive(gateway.url);
    clients.push(client);
    const stock = client.subscribe(listed('StockLevelChanged').body, { skus: [SKU] });
    assert.equal((await stock.nextData()).stockLevelChanged.available, 9);
    stock.dispose();
    const mine = client.subscribe(`subscription Mine { stockLevelChanged(skus: ["${SKU}"]) { sku } }`);
    await mine.end(10_000);
    assert.equal((mine.error as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code, NOT_IN_LIST, JSON.stringify(mine.error));
  });

  test('TRUSTED_DOCUMENTS_OPERATORS: a named admin may run any document; an admin not named, or a named customer, may not', async () => {
    const operator = await post(gateway.url, { query: UNLISTED }, await stack.token('ops-1', ['admin']));
    assert.equal(operator.json.data?.product?.sku, SKU, JSON.stringify(operator.json));
    for (const [sub, roles] of [
      ['ops-9', ['admin']],
      ['ops-2', ['customer']],
    ] as const) {
      const refused = await post(gateway.url, { query: UNLISTED }, await stack.token(sub, [...roles]));
      assert.equal(refused.json.errors?.[0].extensions.code, NOT_IN_LIST, `${sub} ${roles}`);
    }
  });

  test('the SDK works against it unchanged (it sends ids), and outside production any document runs', async () => {
    const client = createClient({ url: gateway.url });
    const { product } = await client.product({ sku: SKU });
    assert.equal(product?.name, 'Trusted');
    await client.close();
    const development = await postGraphQL(stack.gateway!.url, UNLISTED);
    assert.equal(development.data?.product?.sku, SKU, JSON.stringify(development.errors));
  });
});
