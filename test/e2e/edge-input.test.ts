/**
 * Client mistakes in string input are 400 BAD_USER_INPUT, never 500, and never an error in the
 * logs (issue 9, item 5): NUL bytes, other control characters, lone UTF-16 surrogates and
 * oversized identifiers are refused by the platform's input guard (platform/src/input.ts) at the
 * gateway, over HTTP and graphql-ws, and at a subgraph called directly. Ordinary non-ASCII text
 * still works. Real services, PostgreSQL, Redis and Kafka; every process logs into this test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@swiftcart/platform';
import { startStack, type TestStack } from '../support/stack.ts';
import { type LiveClient, connectLive } from '../support/subscriptions.ts';

const PRODUCT = 'query Product($sku: ID!) { product(sku: $sku) { sku name } }';
const CREATE = 'mutation Create($input: CreateProductInput!) { createProduct(input: $input) { sku name description } }';
const PLACE = 'mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }';
const STOCK = 'subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku available } }';

/** A body the way a client may really send it: raw JSON text, escapes and all. */
async function postRaw(url: string, body: string, headers: Readonly<Record<string, string>> = {}): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) };
}

/** Asserts one BAD_USER_INPUT error naming `field`, with no data and no stack trace. */
function assertRefused(result: { status: number; errors?: readonly any[]; data?: unknown }, field: string, problem: RegExp): void {
  assert.equal(result.status, 400, JSON.stringify(result));
  assert.equal(result.data, undefined);
  assert.equal(result.errors?.length, 1, JSON.stringify(result.errors));
  const [error] = result.errors!;
  assert.equal(error.extensions.code, 'BAD_USER_INPUT');
  assert.equal(error.extensions.field, field);
  assert.match(error.message, problem);
  assert.equal(error.extensions.stacktrace, undefined);
  assert.equal(error.extensions.http, undefined);
}

describe('string input at the edge', () => {
  let stack: TestStack;
  let admin: string;
  let customer: string;
  const logged: Record<string, any>[] = [];
  /** Where the lines logged by the requests of this test begin (start-up is not its subject). */
  let requestsFrom = 0;
  const clients: LiveClient[] = [];

  before(async () => {
    stack = await startStack({
      services: ['product', 'inventory'],
      gateway: true,
      env: { LOG_LEVEL: 'info' },
      log: (name) =>
        createLogger(name, 'info', {
          write: (line: string) => {
            logged.push(JSON.parse(line));
          },
        }),
    });
    admin = await stack.token('edge-admin', ['admin']);
    customer = await stack.token('edge-customer', ['customer']);
    requestsFrom = logged.length;
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
  });

  it('non-ASCII text, emoji (surrogate pairs), tabs and newlines pass through the gateway unchanged', async () => {
    const input = {
      sku: 'EDGE-UTF-1',
      name: 'Kaffeebecher „Hauptstraße“ 🛒☕',
      description: 'Zeile 1\nZeile 2\tmit Tab — 日本語 👨‍👩‍👧',
      price: { amount: 1299, currency: 'EUR' },
    };
    const created = await stack.graphql(CREATE, { token: admin, variables: { input } });
    assert.equal(created.errors, undefined, JSON.stringify(created.errors));
    assert.deepEqual(created.data.createProduct, { sku: input.sku, name: input.name, description: input.description });
    const read = await stack.graphql(PRODUCT, { variables: { sku: input.sku } });
    assert.deepEqual(read, { status: 200, data: { product: { sku: input.sku, name: input.name } }, errors: undefined });
    const found = await stack.graphql('query($q: String) { products(filter: { search: $q }) { edges { node { sku } } } }', {
      variables: { q: 'hauptstraße“ 🛒' },
    });
    assert.deepEqual(found.data?.products.edges, [{ node: { sku: input.sku } }], JSON.stringify(found));
  });

  it('NUL in product(sku:) is BAD_USER_INPUT with 400 through the gateway, inline and as a variable', async () => {
    assertRefused(await stack.graphql('{ product(sku: "SKU-0001\\u0000") { sku } }'), 'sku', /^Argument "sku" contains the control character U\+0000/);
    assertRefused(await stack.graphql(PRODUCT, { variables: { sku: 'SKU-0001\u0000' } }), '$sku', /^Variable "\$sku" contains the control character U\+0000/);
  });

  it('NUL in product(sku:) is BAD_USER_INPUT with 400 at the product subgraph itself', async () => {
    const url = stack.services.product!.url;
    assertRefused(await stack.graphql('{ product(sku: "SKU-0001\\u0000") { sku } }', { url }), 'sku', /U\+0000/);
    assertRefused(await stack.graphql(PRODUCT, { url, variables: { sku: '\u0000' } }), '$sku', /U\+0000/);
  });

  it('a lone surrogate in a raw JSON variable ("\\ud800") is BAD_USER_INPUT, at the gateway and at the subgraph', async () => {
    const body = '{"query":"query Product($sku: ID!) { product(sku: $sku) { sku } }","variables":{"sku":"SKU-\\ud800"}}';
    assert.ok(body.includes('\\ud800'), 'the escape itself is on the wire');
    for (const [url, headers] of [
      [stack.gateway!.url, {}],
      [stack.services.product!.url, stack.subgraphHeaders],
    ] as const) {
      const { status, body: answer } = await postRaw(url, body, headers);
      assertRefused({ status, ...answer }, '$sku', /lone UTF-16 surrogate \(U\+D800\)/);
    }
    const search = '{"query":"query($q: String) { products(filter: { search: $q }) { totalCount } }","variables":{"q":"\\udc00abc"}}';
    const { status, body: answer } = await postRaw(stack.gateway!.url, search);
    assertRefused({ status, ...answer }, '$q', /U\+DC00/);
  });

  it('an oversized identifier is BAD_USER_INPUT: an ID argument and an `after` cursor', async () => {
    assertRefused(await stack.graphql(`{ product(sku: "${'S'.repeat(257)}") { sku } }`), 'sku', /257 characters long, more than the 256 allowed/);
    assertRefused(
      await stack.graphql('query($after: String) { products(first: 5, after: $after) { totalCount } }', { variables: { after: 'c'.repeat(5_000) } }),
      '$after',
      /5000 characters long, more than the 256 allowed/,
    );
    // At the limit it is an ordinary miss.
    const miss = await stack.graphql(PRODUCT, { variables: { sku: 'S'.repeat(256) } });
    assert.deepEqual(miss, { status: 200, data: { product: null }, errors: undefined });
  });

  it('a NUL deep in an input object is refused: placeOrder shipping address, createProduct name', async () => {
    const order = {
      idempotencyKey: 'edge-input-1',
      items: [{ sku: 'EDGE-UTF-1', quantity: 1 }],
      shippingAddress: { name: 'Ada', line1: 'Hauptstraße 1\u0000', city: 'Berlin', postalCode: '10115', country: 'DE' },
      paymentMethod: 'tok_visa',
    };
    // The order subgraph is not even running: the gateway refuses before planning any fetch.
    assertRefused(await stack.graphql(PLACE, { token: customer, variables: { input: order } }), '$input.shippingAddress.line1', /U\+0000/);
    const product = { sku: 'EDGE-NUL-1', name: 'Mug\u0000', price: { amount: 1, currency: 'EUR' } };
    assertRefused(await stack.graphql(CREATE, { token: admin, variables: { input: product } }), '$input.name', /U\+0000/);
    assertRefused(await stack.graphql(CREATE, { token: admin, url: stack.services.product!.url, variables: { input: product } }), '$input.name', /U\+0000/);
    assertRefused(
      await stack.graphql('mutation { createProduct(input: { sku: "EDGE-NUL-2", name: "Mug\\u001b[2J", price: { amount: 1, currency: "EUR" } }) { sku } }', {
        token: admin,
      }),
      'input.name',
      /U\+001B/,
    );
    // Nothing was created by any of them.
    for (const sku of ['EDGE-NUL-1', 'EDGE-NUL-2']) assert.equal((await stack.graphql(PRODUCT, { variables: { sku } })).data.product, null);
  });

  it('raw NUL and lone surrogates in the document text are 400s too, never 500s', async () => {
    // The GraphQL lexer takes a raw NUL inside a string; the guard does not.
    assertRefused(await stack.graphql('{ product(sku: "SKU\u0000") { sku } }'), 'sku', /U\+0000/);
    // A raw lone surrogate is no source character: the parser refuses it.
    const result = await stack.graphql('{ product(sku: "SKU\ud800") { sku } }');
    assert.equal(result.status, 400);
    assert.equal(result.errors?.[0].extensions?.code, 'GRAPHQL_PARSE_FAILED');
  });

  it('over graphql-ws at the gateway: subscriptions and queries with bad strings are refused', async () => {
    const client = connectLive(stack.gateway!.url, { token: customer });
    clients.push(client);
    const badVariable = client.subscribe(STOCK, { skus: ['EDGE-UTF-1', 'EDGE\ud800'] });
    await badVariable.end();
    assert.deepEqual(badVariable.error, [
      {
        message: 'Variable "$skus[1]" contains a lone UTF-16 surrogate (U+D800), which is not valid Unicode',
        extensions: { code: 'BAD_USER_INPUT', field: '$skus[1]' },
      },
    ]);
    const badLiteral = client.subscribe('subscription { stockLevelChanged(skus: ["A\\u0000"]) { sku } }');
    await badLiteral.end();
    assert.equal((badLiteral.error as any[])[0].extensions.field, 'skus[0]');
    const badQuery = client.subscribe(PRODUCT, { sku: `${'x'.repeat(300)}` });
    await badQuery.end();
    assert.equal((badQuery.error as any[])[0].extensions.code, 'BAD_USER_INPUT');
    assert.equal((badQuery.error as any[])[0].extensions.field, '$sku');
    // The same client goes on with good operations.
    const good = client.subscribe(STOCK, { skus: ['EDGE-UTF-1'] });
    assert.deepEqual(await good.nextData(), { stockLevelChanged: { sku: 'EDGE-UTF-1', available: 0 } });
    good.dispose();
    const query = client.subscribe(PRODUCT, { sku: 'EDGE-UTF-1' });
    assert.deepEqual(await query.nextData(), { product: { sku: 'EDGE-UTF-1', name: 'Kaffeebecher „Hauptstraße“ 🛒☕' } });
    // The lazy client closes its idle socket normally between operations; the server cut none.
    assert.deepEqual(
      client.closes.filter((c) => c.code !== 1000),
      [],
    );
  });

  it('over graphql-ws at a subgraph: a subscription with a NUL is refused', async () => {
    const client = connectLive(stack.services.inventory!.wsUrl, { headers: stack.subgraphHeaders });
    clients.push(client);
    const bad = client.subscribe(STOCK, { skus: ['A\u0000'] });
    await bad.end();
    assert.deepEqual(bad.error, [
      {
        message: 'Variable "$skus[0]" contains the control character U+0000, which is not accepted',
        extensions: { code: 'BAD_USER_INPUT', field: '$skus[0]' },
      },
    ]);
  });

  it('logged none of it at error level, nor any stack trace', () => {
    // Every process logs into this test (the hook works)...
    assert.ok(
      logged.some((line) => line.msg === 'gateway ready'),
      'the gateway logs into the test',
    );
    assert.ok(
      logged.some((line) => line.msg === 'product subgraph ready'),
      'the product subgraph logs into the test',
    );
    // ...and nothing above was an error to it. kafkajs's own lines are left out: it logs the
    // broker's retriable answers (a coordinator still loading) at error level, whatever the requests.
    const fromRequests = logged.slice(requestsFrom).filter((line) => line.kafka?.logger !== 'kafkajs');
    assert.deepEqual(
      fromRequests.filter((line) => line.level === 'error' || line.level === 'fatal'),
      [],
    );
    assert.deepEqual(
      fromRequests.filter((line) => /\\n\s+at /.test(JSON.stringify(line))),
      [],
    );
  });
});
