/**
 * A subgraph's own operation limits (platform/src/limits.ts, applied by platform/src/service.ts and
 * ws.ts), against the real inventory subgraph called directly, as a process that skipped the
 * gateway would: depth and tokens refused with 400 and their codes over HTTP, and over graphql-ws;
 * the gateway's deepest `_entities` fetches pass. Also the cost estimator and the settings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildSchema, getOperationAST, parse } from 'graphql';
import { getComplexity } from 'graphql-query-complexity';
import {
  type Config,
  ConfigError,
  DEFAULT_OPERATION_LIMITS,
  DEFAULT_SUBGRAPH_LIMITS,
  createLogger,
  costLimiter,
  listCostEstimator,
  startService,
  subgraphLimits,
} from '../src/index.ts';
import { type TestStack, loadServiceModule, postGraphQL, startStack } from '../../test/support/stack.ts';
import { connectLive } from '../../test/support/subscriptions.ts';

/** A selection on StockLevel reaching `levels` levels down, through `product` and `stock` by turns. */
function onStock(levels: number): string {
  return levels <= 1 ? 'available' : `product { ${onProduct(levels - 1)} }`;
}

/** A selection on Product reaching `levels` levels down. */
function onProduct(levels: number): string {
  return levels <= 1 ? 'sku' : `stock { ${onStock(levels - 1)} }`;
}

/** `{ stockLevel(sku) { product { stock { ... } } } }`, `depth` levels deep with its last field. */
function deepStock(depth: number): string {
  return `{ stockLevel(sku: "SKU-1") { ${onStock(depth - 1)} } }`;
}

/** How deep a result nests: the query's depth, when every level was answered. */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(...Object.values(value).map(depthOf));
}

let stack: TestStack;
let url: string;
const logged: Record<string, any>[] = [];

before(async () => {
  stack = await startStack({
    services: ['inventory'],
    log: (name) =>
      createLogger(name, 'info', {
        write: (line: string) => {
          logged.push(JSON.parse(line));
        },
      }),
  });
  url = stack.services.inventory!.url;
});

after(async () => {
  await stack?.close();
});

describe('a subgraph called directly applies its own limits', () => {
  test(`${DEFAULT_SUBGRAPH_LIMITS.maxDepth} levels are served; one more is refused with 400 DEPTH_LIMIT_EXCEEDED`, async () => {
    const served = await stack.graphql(deepStock(DEFAULT_SUBGRAPH_LIMITS.maxDepth), { url });
    assert.equal(served.status, 200);
    assert.equal(served.errors, undefined, JSON.stringify(served.errors));
    assert.equal(depthOf(served.data), DEFAULT_SUBGRAPH_LIMITS.maxDepth);
    const refused = await stack.graphql(deepStock(DEFAULT_SUBGRAPH_LIMITS.maxDepth + 1), { url });
    assert.equal(refused.status, 400);
    assert.equal(refused.data, undefined);
    assert.deepEqual(refused.errors, [
      {
        message: `Query depth limit of ${DEFAULT_SUBGRAPH_LIMITS.maxDepth} exceeded, found ${DEFAULT_SUBGRAPH_LIMITS.maxDepth + 1}.`,
        extensions: { code: 'DEPTH_LIMIT_EXCEEDED', limit: DEFAULT_SUBGRAPH_LIMITS.maxDepth },
      },
    ]);
  });

  test("the gateway's deepest entity fetch, and then some, is served", async () => {
    // The gateway fetches parts of a client's selection (at most GRAPHQL_MAX_DEPTH deep) below
    // `_entities` and an inline fragment; here twice that depth.
    const levels = 2 * DEFAULT_OPERATION_LIMITS.maxDepth;
    const query = `query Fetch($representations: [_Any!]!) { _entities(representations: $representations) { ... on Product { ${onProduct(levels)} } } }`;
    const served = await stack.graphql(query, { url, variables: { representations: [{ __typename: 'Product', sku: 'SKU-1' }] } });
    assert.equal(served.status, 200, JSON.stringify(served.errors));
    assert.equal(served.errors, undefined);
    assert.equal(served.data._entities.length, 1);
    // `_entities`, its list, then every level below the fragment.
    assert.equal(depthOf(served.data), 2 + levels);
  });

  test(`a document over ${DEFAULT_SUBGRAPH_LIMITS.maxTokens} tokens is refused with 400 TOKEN_LIMIT_EXCEEDED`, async () => {
    const refused = await stack.graphql(`{ stockLevel(sku: "SKU-1") { ${'available '.repeat(DEFAULT_SUBGRAPH_LIMITS.maxTokens)} } }`, { url });
    assert.equal(refused.status, 400);
    assert.equal(refused.errors?.length, 1);
    assert.equal(refused.errors![0].message, `Token limit of ${DEFAULT_SUBGRAPH_LIMITS.maxTokens} exceeded.`);
    assert.deepEqual(refused.errors![0].extensions, { code: 'TOKEN_LIMIT_EXCEEDED', limit: DEFAULT_SUBGRAPH_LIMITS.maxTokens });
  });

  test('over graphql-ws: a too-deep subscription is refused with DEPTH_LIMIT_EXCEEDED, a good one served', async () => {
    await using live = connectLive(url, { headers: stack.subgraphHeaders });
    const deep = live.subscribe(`subscription { stockLevelChanged(skus: ["SKU-1"]) { ${onStock(DEFAULT_SUBGRAPH_LIMITS.maxDepth)} } }`);
    await deep.end();
    assert.deepEqual(deep.error, [
      {
        message: `Query depth limit of ${DEFAULT_SUBGRAPH_LIMITS.maxDepth} exceeded, found ${DEFAULT_SUBGRAPH_LIMITS.maxDepth + 1}.`,
        extensions: { code: 'DEPTH_LIMIT_EXCEEDED', limit: DEFAULT_SUBGRAPH_LIMITS.maxDepth },
      },
    ]);
    const tooLong = live.subscribe(`subscription { stockLevelChanged(skus: ["SKU-1"]) { ${'sku '.repeat(DEFAULT_SUBGRAPH_LIMITS.maxTokens)} } }`);
    await tooLong.end();
    assert.equal((tooLong.error as { extensions: { code: string } }[])[0].extensions.code, 'TOKEN_LIMIT_EXCEEDED');
    const twoOperations = live.subscribe(
      'subscription A { stockLevelChanged(skus: ["SKU-1"]) { sku } } subscription B { stockLevelChanged(skus: ["SKU-1"]) { available } }',
    );
    await twoOperations.end();
    assert.equal((twoOperations.error as { extensions: { code: string } }[])[0].extensions.code, 'OPERATION_RESOLUTION_FAILURE');
    const good = live.subscribe('subscription { stockLevelChanged(skus: ["SKU-1"]) { sku available product { sku } } }');
    assert.deepEqual(await good.nextData(), { stockLevelChanged: { sku: 'SKU-1', available: 0, product: { sku: 'SKU-1' } } });
    good.dispose();
  });

  test('SUBGRAPH_MAX_DEPTH and SUBGRAPH_MAX_TOKENS set them', async () => {
    const config: Config = { ...stack.config, vars: { ...stack.config.vars, SUBGRAPH_MAX_DEPTH: '4', SUBGRAPH_MAX_TOKENS: '30' } };
    await using strict = await startService(await loadServiceModule('inventory'), {
      config,
      port: 0,
      messaging: false,
      migrate: false,
      log: createLogger('inventory', 'fatal'),
    });
    const ok = await postGraphQL(strict.url, deepStock(4), undefined, null, stack.subgraphHeaders);
    assert.equal(ok.errors, undefined, JSON.stringify(ok.errors));
    const deep = await postGraphQL(strict.url, deepStock(5), undefined, null, stack.subgraphHeaders);
    assert.equal(deep.status, 400);
    assert.equal(deep.errors?.[0].message, 'Query depth limit of 4 exceeded, found 5.');
    const long = await postGraphQL(strict.url, `{ stockLevel(sku: "SKU-1") { ${'sku '.repeat(30)} } }`, undefined, null, stack.subgraphHeaders);
    assert.equal(long.status, 400);
    assert.equal(long.errors?.[0].extensions?.code, 'TOKEN_LIMIT_EXCEEDED');
    assert.deepEqual(subgraphLimits({ vars: {} }), DEFAULT_SUBGRAPH_LIMITS);
    assert.throws(
      () => subgraphLimits({ vars: { SUBGRAPH_MAX_DEPTH: 'deep' } }),
      (e: unknown) => e instanceof ConfigError && /SUBGRAPH_MAX_DEPTH/.test(e.message),
    );
  });

  test('none of these refusals was logged as an error or with a stack trace', () => {
    assert.deepEqual(
      logged.filter((line) => line.level === 'error' || line.level === 'fatal' || line.err?.stack !== undefined),
      [],
    );
  });
});

describe('the cost estimator', () => {
  const schema = buildSchema(`
    type Query { items(first: Int = 20, last: Int): ItemConnection!  item: Item  tags: [String!]! }
    type ItemConnection { edges: [ItemEdge!]!  nodes: [Item!]!  totalCount: Int! }
    type ItemEdge { cursor: String!  node: Item! }
    type Item { id: ID!  parts: [Item!]! }
  `);
  const cost = (query: string, variables: Record<string, unknown> = {}) =>
    getComplexity({ schema, query: parse(query), variables, estimators: [listCostEstimator(10)] });

  test('a field costs 1 plus its selection; a list multiplies its selection by its assumed size', () => {
    assert.equal(cost('{ item { id } }'), 2);
    assert.equal(cost('{ tags }'), 1);
    assert.equal(cost('{ item { parts { id } } }'), 1 + (1 + 10 * 1));
  });

  test("first/last multiply the connection's selection (defaults and variables included); its own lists are not counted again", () => {
    assert.equal(cost('{ items(first: 100) { edges { node { id } } } }'), 1 + 100 * 3);
    assert.equal(cost('{ items { nodes { id } totalCount } }'), 1 + 20 * 3);
    assert.equal(cost('query Q($n: Int) { items(first: $n) { nodes { id } } }', { n: 7 }), 1 + 7 * 2);
    assert.equal(cost('{ items(first: 5, last: 50) { nodes { id } } }'), 1 + 50 * 2);
    assert.equal(cost('{ items(first: null) { nodes { id } } }'), 1 + 10 * 2);
  });

  test('a page of 0 costs as much as a page of 1: the selection is still planned', () => {
    assert.equal(cost('{ items(first: 0) { edges { node { id parts { id } } } } }'), cost('{ items(first: 1) { edges { node { id parts { id } } } } }'));
  });

  test('introspection is free: the gateway answers it itself', () => {
    assert.equal(cost('{ __typename __schema { types { name fields { name } } } }'), 0);
  });

  test('costLimiter refuses over the limit with COST_LIMIT_EXCEEDED its limit and the cost found, and leaves bad variables to the caller', () => {
    const limiter = costLimiter({ maxCost: 100, assumedListSize: 10 });
    const document = parse('query Q($n: Int!) { items(first: $n) { nodes { id } } }');
    const operation = getOperationAST(document)!;
    assert.equal(limiter(schema, document, operation, { n: 49 }), null);
    const refused = limiter(schema, document, operation, { n: 50 });
    assert.equal(refused?.message, 'Query cost limit of 100 exceeded, found 101.');
    assert.deepEqual(refused?.extensions, { code: 'COST_LIMIT_EXCEEDED', limit: 100, cost: 101 });
    // Remembered per document and page size: the same answer again.
    assert.equal(limiter(schema, document, operation, { n: 50 })?.message, refused?.message);
    assert.equal(limiter(schema, document, operation, {}), null);
    assert.equal(limiter(schema, document, operation, { n: 'many' }), null);
  });
});
