/**
 * Operation limits at the gateway (platform/src/limits.ts), before planning, on HTTP and graphql-ws,
 * in front of real product and inventory subgraphs: the 1,000-level query and alias bomb,
 * depth, aliases, directives, tokens and cost, each refused with HTTP 400 and its own code and
 * limit, without anything reaching a subgraph; `operationName` mistakes are 400
 * OPERATION_RESOLUTION_FAILURE; `EDGE_LIMITS=off` turns the limits off, except in production.
 * None of it is logged as an error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from 'graphql-ws';
import { type Config, ConfigError, createLogger } from '@swiftcart/platform';
import { DEFAULT_OPERATION_LIMITS, edgeLimitsEnabled, gatewayLimits } from '@swiftcart/platform/limits';
import { type TestStack, startStack } from '../../test/support/stack.ts';
import { type LiveClient, type LiveResult, type SubscriptionProbe, connectLive } from '../../test/support/subscriptions.ts';
import { type Fetcher, type RunningGateway, startGateway } from '../src/gateway.ts';
import { createKeepAliveFetcher } from '../src/fetcher.ts';

const SKU = 'LIMIT-0001';

/** `{ product(sku) { name stock { available product { ... } } } }`, `pairs` times product → stock: 2 × pairs + 2 levels deep. */
function nested(pairs: number, sku = SKU): string {
  return `{ product(sku: "${sku}") { ${'name stock { available product { '.repeat(pairs)}name${' } }'.repeat(pairs)} } }`;
}

/** The alias bomb: 150 aliases of `products(first: 100)` with their stock (15,000 nodes, 15.6 KB). */
const ALIAS_BOMB = `{ ${Array.from({ length: 150 }, (_, i) => `a${i}: products(first: 100) { edges { node { sku name price { amount currency } stock { available } } } }`).join(' ')} }`;

/** Pages of products with every field and their stock: 1 + 100 × 18 = 1,801 each. */
const PAGE =
  'edges { node { sku name description status createdAt updatedAt price { amount currency } stock { sku onHand reserved available version updatedAt } } }';

/** `count` aliased pages of `first` products; `first` may be a variable. */
function pages(count: number, first: string | number): string {
  return Array.from({ length: count }, (_, i) => `p${i}: products(first: ${first}) { ${PAGE} }`).join(' ');
}

const TWO_OPERATIONS = `query First { product(sku: "${SKU}") { name } } query Second { product(sku: "${SKU}") { sku } }`;

interface HttpResult {
  readonly status: number;
  readonly body: { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  readonly ms: number;
}

/** POSTs `body` as JSON, timing the round trip. */
async function post(url: string, body: Record<string, unknown>): Promise<HttpResult> {
  const started = performance.now();
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text), ms: performance.now() - started };
}

/** Asserts a 400 refusal with one error of `code`, its `limit`, and a message matching `message`. */
function assertRefused(result: HttpResult, code: string, message: RegExp, limit?: number): void {
  assert.equal(result.status, 400, JSON.stringify(result.body).slice(0, 500));
  assert.equal(result.body.data, undefined);
  assert.equal(result.body.errors?.length, 1, JSON.stringify(result.body.errors));
  const [error] = result.body.errors!;
  assert.equal(error.extensions?.code, code);
  assert.match(error.message, message);
  if (limit !== undefined) assert.equal(error.extensions?.limit, limit);
  assert.equal(error.extensions?.stacktrace, undefined);
  assert.equal(error.extensions?.http, undefined);
}

/** What one graphql-ws query got: its result, or the errors it was refused with. */
function wsOnce(
  client: Client,
  payload: { query: string; operationName?: string; variables?: Record<string, unknown> },
  timeoutMs = 5_000,
): Promise<LiveResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(payload).slice(0, 200)}`)), timeoutMs);
    const settle = (settled: () => void) => {
      clearTimeout(timer);
      settled();
    };
    // Queries and refusals end by themselves: disposing a finished one would release the lazy
    // client's hold on the socket a second time and close it under the other subscriptions.
    client.subscribe(payload, {
      next: (value) => settle(() => resolve(value as LiveResult)),
      error: (error) => settle(() => (Array.isArray(error) ? resolve({ errors: error }) : reject(error))),
      complete: () => settle(() => reject(new Error(`completed without a result: ${JSON.stringify(payload).slice(0, 200)}`))),
    });
  });
}

/** Asserts a graphql-ws refusal with `code` (an `error` message: no data). */
function assertWsRefused(result: LiveResult, code: string, message: RegExp): void {
  assert.equal(result.data, undefined, JSON.stringify(result));
  assert.equal(result.errors?.length, 1, JSON.stringify(result.errors));
  assert.equal(result.errors![0].extensions?.code, code);
  assert.match(result.errors![0].message, message);
}

let stack: TestStack;
let gatewayUrl: string;
/** A second gateway, with room for 50,000 tokens, so the other limits meet the documents; its subgraph calls are counted. */
let roomy: RunningGateway;
let subgraphCalls = 0;
let fetcher: (Fetcher & { close(): void }) | undefined;
const logged: Record<string, any>[] = [];
const capture = (name: string) =>
  createLogger(name, 'info', {
    write: (line: string) => {
      logged.push(JSON.parse(line));
    },
  });

before(async () => {
  stack = await startStack({ services: ['product', 'inventory'], gateway: true, log: capture });
  gatewayUrl = stack.gateway!.url;
  const admin = await stack.token('ada', ['admin']);
  const created = await stack.graphql('mutation Create($input: CreateProductInput!) { createProduct(input: $input) { sku } }', {
    token: admin,
    variables: { input: { sku: SKU, name: 'Limit mug', price: { amount: 900, currency: 'EUR' } } },
  });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  const inner = createKeepAliveFetcher();
  fetcher = Object.assign(
    (url: string, init?: Parameters<Fetcher>[1]) => {
      subgraphCalls++;
      return inner(url, init);
    },
    { close: () => inner.close() },
  );
  const config: Config = { ...stack.config, vars: { ...stack.config.vars, GRAPHQL_MAX_TOKENS: '50000' } };
  roomy = await startGateway({
    config,
    port: 0,
    fetcher,
    log: capture('gateway'),
    subgraphUrls: { product: stack.services.product!.url, inventory: stack.services.inventory!.url },
  });
});

after(async () => {
  await roomy?.close();
  fetcher?.close();
  await stack?.close();
});

describe("the issue's 1,000-level query", () => {
  const query = nested(1_000);

  test('is 37 KB, and refused with 400 within a second, every time: the heap and /healthz are unchanged', async () => {
    assert.ok(query.length > 37_000 && query.length < 40_000, `${query.length} bytes`);
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20; i++) {
      const result = await post(gatewayUrl, { query });
      assertRefused(result, 'TOKEN_LIMIT_EXCEEDED', /^Token limit of 1000 exceeded\.$/, 1000);
      assert.ok(result.ms < 1_000, `answered in ${result.ms.toFixed(0)} ms`);
    }
    const grownMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    // Planning it filled a 4 GB heap; refusing 20 of them must not hold on to anything worth measuring.
    assert.ok(grownMiB < 32, `heap grew by ${grownMiB.toFixed(1)} MiB`);
    const health = await fetch(new URL('/healthz', gatewayUrl));
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, 'ok');
    const served = await post(gatewayUrl, { query: `{ product(sku: "${SKU}") { name } }` });
    assert.deepEqual(served.body, { data: { product: { name: 'Limit mug' } } });
  });

  test('with tokens to spare, the depth limit refuses it within a second, and nothing reaches a subgraph', async () => {
    const calls = subgraphCalls;
    const result = await post(roomy.url, { query });
    assertRefused(result, 'DEPTH_LIMIT_EXCEEDED', /^Query depth limit of 12 exceeded, found 2002\.$/, 12);
    assert.ok(result.ms < 1_000, `answered in ${result.ms.toFixed(0)} ms`);
    assert.equal(subgraphCalls, calls);
  });
});

describe('depth', () => {
  test('12 levels through product and inventory are served, down to the last', async () => {
    const result = await post(gatewayUrl, { query: nested(5) });
    assert.equal(result.status, 200, JSON.stringify(result.body));
    assert.equal(result.body.errors, undefined);
    let product = result.body.data.product;
    for (let i = 0; i < 5; i++) {
      assert.equal(product.name, 'Limit mug');
      assert.equal(product.stock.available, 0);
      product = product.stock.product;
    }
    assert.deepEqual(product, { name: 'Limit mug' });
  });

  test('13 levels are refused with DEPTH_LIMIT_EXCEEDED, fragments counted by their fields', async () => {
    assertRefused(
      await post(gatewayUrl, { query: `{ product(sku: "${SKU}") { ${'stock { product { '.repeat(5)}stock { available }${' } }'.repeat(5)} } }` }),
      'DEPTH_LIMIT_EXCEEDED',
      /^Query depth limit of 12 exceeded, found 13\.$/,
      12,
    );
    const viaFragments = `query Deep { product(sku: "${SKU}") { ...A } }
      fragment A on Product { stock { product { stock { product { ...B } } } } }
      fragment B on Product { stock { product { stock { product { stock { product { stock { available } } } } } } } }`;
    assertRefused(await post(gatewayUrl, { query: viaFragments }), 'DEPTH_LIMIT_EXCEEDED', /found 13/, 12);
  });
});

describe('aliases', () => {
  test("the issue's alias bomb is refused with 400: by the token limit, or with tokens to spare by the alias limit", async () => {
    assertRefused(await post(gatewayUrl, { query: ALIAS_BOMB }), 'TOKEN_LIMIT_EXCEEDED', /Token limit of 1000 exceeded/, 1000);
    const calls = subgraphCalls;
    assertRefused(await post(roomy.url, { query: ALIAS_BOMB }), 'ALIAS_LIMIT_EXCEEDED', /^Aliases limit of 15 exceeded, found 150\.$/, 15);
    assert.equal(subgraphCalls, calls);
  });

  test('a compact alias bomb within the token limit is refused with ALIAS_LIMIT_EXCEEDED; 15 aliases are served', async () => {
    const bomb = (n: number) => `query Bomb { ${Array.from({ length: n }, (_, i) => `a${i}: products(first: 100) { ...P }`).join(' ')} }
      fragment P on ProductConnection { edges { node { sku stock { available } } } }`;
    assertRefused(await post(gatewayUrl, { query: bomb(60) }), 'ALIAS_LIMIT_EXCEEDED', /^Aliases limit of 15 exceeded, found 60\.$/, 15);
    const served = await post(gatewayUrl, { query: bomb(15) });
    assert.equal(served.status, 200, JSON.stringify(served.body));
    assert.deepEqual(
      served.body.data.a14.edges.map((e: any) => e.node),
      [{ sku: SKU, stock: { available: 0 } }],
    );
  });
});

describe('cost', () => {
  test('six pages of 100 products with their stock (cost 10,806) are refused with COST_LIMIT_EXCEEDED before any subgraph call', async () => {
    const calls = subgraphCalls;
    assertRefused(
      await post(roomy.url, { query: `{ ${pages(6, 100)} }` }),
      'COST_LIMIT_EXCEEDED',
      /^Query cost limit of 10000 exceeded, found 10806\.$/,
      10_000,
    );
    assert.equal(subgraphCalls, calls);
    const five = await post(gatewayUrl, { query: `{ ${pages(5, 100)} }` });
    assert.equal(five.status, 200, JSON.stringify(five.body));
    assert.equal(five.body.data.p4.edges[0].node.sku, SKU);
  });

  test('page sizes from variables count: the same document is served with first: 20 and refused with first: 100', async () => {
    const query = `query Pages($first: Int!) { ${pages(6, '$first')} }`;
    const small = await post(gatewayUrl, { query, variables: { first: 20 } });
    assert.equal(small.status, 200, JSON.stringify(small.body));
    assertRefused(await post(gatewayUrl, { query, variables: { first: 100 } }), 'COST_LIMIT_EXCEEDED', /found 10806/, 10_000);
  });
});

describe('directives and tokens', () => {
  test('11 directives are refused with DIRECTIVE_LIMIT_EXCEEDED; 10 are served', async () => {
    const query = (n: number) => `{ product(sku: "${SKU}") { sku ${Array.from({ length: n }, () => 'name @include(if: true)').join(' ')} } }`;
    assertRefused(await post(gatewayUrl, { query: query(11) }), 'DIRECTIVE_LIMIT_EXCEEDED', /^Directives limit of 10 exceeded, found 11\.$/, 10);
    assert.deepEqual((await post(gatewayUrl, { query: query(10) })).body, { data: { product: { sku: SKU, name: 'Limit mug' } } });
  });

  test('a document over 1,000 tokens is refused with TOKEN_LIMIT_EXCEEDED while it is parsed; other syntax errors keep GRAPHQL_PARSE_FAILED', async () => {
    assertRefused(
      await post(gatewayUrl, { query: `{ product(sku: "${SKU}") { ${'name '.repeat(1_000)} } }` }),
      'TOKEN_LIMIT_EXCEEDED',
      /^Token limit of 1000 exceeded\.$/,
      1000,
    );
    const broken = await post(gatewayUrl, { query: '{ product(' });
    assert.equal(broken.status, 400);
    assert.equal(broken.body.errors?.[0].extensions?.code, 'GRAPHQL_PARSE_FAILED');
  });
});

describe('operationName', () => {
  test('two operations without operationName: 400 OPERATION_RESOLUTION_FAILURE', async () => {
    assertRefused(await post(gatewayUrl, { query: TWO_OPERATIONS }), 'OPERATION_RESOLUTION_FAILURE', /operationName/);
  });

  test('an unknown operationName: 400 OPERATION_RESOLUTION_FAILURE naming it; a known one is served', async () => {
    assertRefused(
      await post(gatewayUrl, { query: TWO_OPERATIONS, operationName: 'Third' }),
      'OPERATION_RESOLUTION_FAILURE',
      /^Unknown operation named "Third"\.$/,
    );
    assertRefused(
      await post(gatewayUrl, { query: `query Only { product(sku: "${SKU}") { name } }`, operationName: 'Other' }),
      'OPERATION_RESOLUTION_FAILURE',
      /"Other"/,
    );
    assert.deepEqual((await post(gatewayUrl, { query: TWO_OPERATIONS, operationName: 'Second' })).body, { data: { product: { sku: SKU } } });
  });
});

describe('over graphql-ws, the same limits and codes', () => {
  let live: LiveClient;
  let following: SubscriptionProbe;
  before(async () => {
    live = connectLive(gatewayUrl);
    // A subscription held open for the whole block: the lazy client keeps one socket, and every
    // refusal below must leave it running.
    following = live.subscribe(`subscription Follow { stockLevelChanged(skus: ["${SKU}"]) { sku available } }`);
    assert.deepEqual(await following.nextData(), { stockLevelChanged: { sku: SKU, available: 0 } });
  });
  after(() => live?.close());

  test('a too-deep subscription is refused with DEPTH_LIMIT_EXCEEDED', async () => {
    const query = `subscription Deep { stockLevelChanged(skus: ["${SKU}"]) { product { ${'stock { product { '.repeat(5)}name${' } }'.repeat(5)} } } }`;
    assertWsRefused(await wsOnce(live.client, { query }), 'DEPTH_LIMIT_EXCEEDED', /^Query depth limit of 12 exceeded, found 13\.$/);
  });

  test('too-deep, too-long and too-costly queries are refused with their codes; the socket then serves a good one', async () => {
    assertWsRefused(await wsOnce(live.client, { query: nested(6) }), 'DEPTH_LIMIT_EXCEEDED', /found 14/);
    assertWsRefused(await wsOnce(live.client, { query: nested(1_000) }), 'TOKEN_LIMIT_EXCEEDED', /^Token limit of 1000 exceeded\.$/);
    assertWsRefused(await wsOnce(live.client, { query: `{ ${pages(6, 100)} }` }), 'COST_LIMIT_EXCEEDED', /found 10806/);
    assertWsRefused(
      await wsOnce(live.client, { query: `query Pages($first: Int!) { ${pages(6, '$first')} }`, variables: { first: 100 } }),
      'COST_LIMIT_EXCEEDED',
      /found 10806/,
    );
    assertWsRefused(
      await wsOnce(live.client, { query: `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: product(sku: "${SKU}") { name }`).join(' ')} }` }),
      'ALIAS_LIMIT_EXCEEDED',
      /found 16/,
    );
    assert.deepEqual(await wsOnce(live.client, { query: `{ product(sku: "${SKU}") { name } }` }), { data: { product: { name: 'Limit mug' } } });
  });

  test('operationName mistakes are OPERATION_RESOLUTION_FAILURE', async () => {
    assertWsRefused(await wsOnce(live.client, { query: TWO_OPERATIONS }), 'OPERATION_RESOLUTION_FAILURE', /operationName/);
    assertWsRefused(await wsOnce(live.client, { query: TWO_OPERATIONS, operationName: 'Third' }), 'OPERATION_RESOLUTION_FAILURE', /"Third"/);
    assert.deepEqual(await wsOnce(live.client, { query: TWO_OPERATIONS, operationName: 'First' }), { data: { product: { name: 'Limit mug' } } });
  });

  test('the subscription held open meanwhile was not disturbed, and the socket is the first one', () => {
    assert.equal(following.ended, false, following.describeEnd());
    assert.deepEqual(live.closes, []);
  });
});

describe('settings', () => {
  test('GRAPHQL_MAX_* set the limits; EDGE_LIMITS is on unless "off"; anything else is a ConfigError', () => {
    const vars = {
      GRAPHQL_MAX_DEPTH: '20',
      GRAPHQL_MAX_ALIASES: '3',
      GRAPHQL_MAX_DIRECTIVES: '0',
      GRAPHQL_MAX_TOKENS: '2000',
      GRAPHQL_MAX_COST: '500',
      GRAPHQL_COST_LIST_SIZE: '5',
    };
    assert.deepEqual(gatewayLimits({ env: 'development', vars }), {
      maxDepth: 20,
      maxAliases: 3,
      maxDirectives: 0,
      maxTokens: 2000,
      maxCost: 500,
      assumedListSize: 5,
    });
    assert.deepEqual(gatewayLimits({ env: 'production', vars: {} }), DEFAULT_OPERATION_LIMITS);
    assert.equal(edgeLimitsEnabled({ env: 'development', vars: {} }), true);
    assert.equal(edgeLimitsEnabled({ env: 'production', vars: { EDGE_LIMITS: 'on' } }), true);
    assert.equal(edgeLimitsEnabled({ env: 'test', vars: { EDGE_LIMITS: 'OFF' } }), false);
    assert.equal(gatewayLimits({ env: 'test', vars: { EDGE_LIMITS: 'off' } }), null);
    assert.throws(
      () => edgeLimitsEnabled({ env: 'test', vars: { EDGE_LIMITS: 'no' } }),
      (e: unknown) => e instanceof ConfigError && /EDGE_LIMITS must be "on" or "off"/.test(e.message),
    );
    assert.throws(() => gatewayLimits({ env: 'test', vars: { GRAPHQL_MAX_DEPTH: '0' } }), /GRAPHQL_MAX_DEPTH must be an integer from 1/);
  });

  test('EDGE_LIMITS=off serves what the limits refuse; production refuses to start with it', async () => {
    const off: Config = { ...stack.config, vars: { ...stack.config.vars, EDGE_LIMITS: 'off' } };
    await using unlimited = await startGateway({
      config: off,
      port: 0,
      log: capture('gateway'),
      subgraphUrls: { product: stack.services.product!.url, inventory: stack.services.inventory!.url },
    });
    const deep = await post(unlimited.url, { query: nested(6) });
    assert.equal(deep.status, 200, JSON.stringify(deep.body));
    assert.equal(deep.body.data.product.stock.product.stock.product.stock.product.stock.product.stock.product.name, 'Limit mug');
    // operationName mistakes are client errors whatever the switch says.
    assertRefused(await post(unlimited.url, { query: TWO_OPERATIONS }), 'OPERATION_RESOLUTION_FAILURE', /operationName/);
    await assert.rejects(
      startGateway({ config: { ...off, env: 'production' }, port: 0, log: capture('gateway') }),
      (e: unknown) => e instanceof ConfigError && /EDGE_LIMITS=off is refused in production/.test(e.message),
    );
  });
});

test('no refusal above was logged as an error or with a stack trace', () => {
  const bad = logged.filter((line) => line.level === 'error' || line.level === 'fatal' || line.err?.stack !== undefined);
  assert.deepEqual(bad, []);
});
