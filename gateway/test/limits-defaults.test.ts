/**
 * The default operation limits (platform/src/limits.ts) against what clients really send, and against
 * what an attacker may still send: every operation of `schema/operations/`, of the SDK the storefront
 * is built on, and of Apollo Sandbox passes at half of every default; and the worst documents the
 * defaults still accept plan well under 100 ms with @apollo/query-planner on the checked-in supergraph.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  type DocumentNode,
  type GraphQLError,
  Lexer,
  Source,
  TokenKind,
  getIntrospectionQuery,
  getOperationAST,
  parse,
  print,
  separateOperations,
} from 'graphql';
import { Supergraph, operationFromDocument } from '@apollo/federation-internals';
import { QueryPlanner } from '@apollo/query-planner';
import { getComplexity } from 'graphql-query-complexity';
import { REPO_ROOT } from '@swiftcart/platform/config';
import {
  DEFAULT_OPERATION_LIMITS,
  type OperationLimits,
  costLimiter,
  limitValidationRules,
  listCostEstimator,
  parseWithLimit,
  validateWithLimits,
} from '@swiftcart/platform/limits';
import { MAX_PAGE_SIZE } from '@swiftcart/platform/pagination';
import { requestDocuments, subscriptionDocuments } from '../../clients/sdk/src/operations.ts';
import { EXAMPLE_DOCUMENT } from '../src/sandbox.ts';

const supergraph = Supergraph.build(readFileSync(path.join(REPO_ROOT, 'schema', 'supergraph.graphql'), 'utf8'));
const apiSchema = supergraph.apiSchema();
const schema = apiSchema.toGraphQLJSSchema();
const DEFAULTS = DEFAULT_OPERATION_LIMITS;

/** Valid values for every variable the client operations declare; page sizes at their maximum, the worst case. */
const VARIABLES: Readonly<Record<string, unknown>> = {
  first: MAX_PAGE_SIZE,
  after: 'YzE6U0tVLTAwMDE',
  sku: 'SKU-0001',
  skus: Array.from({ length: 100 }, (_, i) => `SKU-${i}`),
  id: '01900000-0000-7000-8000-000000000000',
  orderId: '01900000-0000-7000-8000-000000000000',
  quantity: 1,
  reason: 'changed my mind',
  filter: { search: 'mug' },
  from: '2026-12-06T00:00:00.000Z',
  to: '2026-12-07T00:00:00.000Z',
  granularity: 'HOUR',
  input: {
    idempotencyKey: 'k-1',
    items: [{ sku: 'SKU-0001', quantity: 1 }],
    shippingAddress: { name: 'Ada', line1: '1 Main St', city: 'Berlin', postalCode: '10115', country: 'DE' },
    paymentMethod: 'tok_visa',
  },
};

/** The `input` of operations whose input is not a PlaceOrderInput, by operation name. */
const INPUT_BY_OPERATION: Readonly<Record<string, unknown>> = {
  UpdateMyProfile: { name: 'Ada', email: 'ada@example.com', notificationPreferences: { sms: false } },
  AddAddress: { name: 'Ada', line1: '1 Main St', city: 'Berlin', postalCode: '10115', country: 'DE', isDefault: true },
  UpdateAddress: { name: 'Ada', line1: '1 Main St', city: 'Berlin', postalCode: '10115', country: 'DE' },
  Checkout: { idempotencyKey: 'k-1', shippingAddressId: '01900000-0000-7000-8000-000000000000', paymentMethod: 'tok_visa' },
};

/** Lexical tokens of `text`, as the parser counts them. */
function tokenCount(text: string): number {
  const lexer = new Lexer(new Source(text));
  let count = 0;
  while (lexer.advance().kind !== TokenKind.EOF) count++;
  return count;
}

/** Every operation clients send, one document each, by a name saying where it comes from. */
function clientOperations(): Map<string, DocumentNode> {
  const operations = new Map<string, DocumentNode>();
  const dir = path.join(REPO_ROOT, 'schema', 'operations');
  const files = readdirSync(dir).filter((f) => f.endsWith('.graphql'));
  // Fragments live in other files than some operations that use them: read the folder as one document.
  const all = parse(files.map((f) => readFileSync(path.join(dir, f), 'utf8')).join('\n'));
  for (const [name, document] of Object.entries(separateOperations(all))) operations.set(`schema/operations ${name}`, document);
  for (const [name, document] of Object.entries({ ...requestDocuments, ...subscriptionDocuments })) {
    operations.set(`SDK (storefront) ${name}`, parse(print(document as DocumentNode)));
  }
  for (const [name, document] of Object.entries(separateOperations(parse(EXAMPLE_DOCUMENT)))) operations.set(`Sandbox example ${name}`, document);
  operations.set(
    'Sandbox introspection',
    parse(
      getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true }),
    ),
  );
  return operations;
}

/** Half of every default: what client operations must pass, so the defaults leave them room. */
const HALF: OperationLimits = {
  maxDepth: Math.floor(DEFAULTS.maxDepth / 2),
  maxAliases: Math.floor(DEFAULTS.maxAliases / 2),
  maxDirectives: Math.floor(DEFAULTS.maxDirectives / 2),
  maxTokens: Math.floor(DEFAULTS.maxTokens / 2),
  maxCost: Math.floor(DEFAULTS.maxCost / 2),
  assumedListSize: DEFAULTS.assumedListSize,
};

describe('client operations pass the defaults with room to spare', () => {
  const operations = clientOperations();

  test('the storefront, SDK, schema/operations and Sandbox documents are all there', () => {
    assert.ok(operations.size >= 2 * 9 + 4 + 1, `only ${operations.size} operations found`);
  });

  for (const [name, document] of operations) {
    test(`${name}: accepted at half of every default limit`, () => {
      const text = print(document);
      assert.ok(tokenCount(text) <= HALF.maxTokens, `${tokenCount(text)} tokens`);
      const parsed = parseWithLimit(text, HALF.maxTokens);
      assert.equal((parsed as GraphQLError).message, undefined);
      assert.deepEqual(
        validateWithLimits(schema, parsed as DocumentNode, limitValidationRules(HALF)).map((e) => e.message),
        [],
      );
      // Computed directly (not through costLimiter, which leaves variables it cannot coerce to the
      // gateway): a wrong sample variable must fail here, not pass unchecked.
      const operation = getOperationAST(document)!;
      const cost = getComplexity({
        schema,
        query: document,
        operationName: operation.name?.value,
        variables: { ...VARIABLES, input: INPUT_BY_OPERATION[operation.name?.value ?? ''] ?? VARIABLES.input },
        estimators: [listCostEstimator(HALF.assumedListSize)],
      });
      assert.ok(cost <= HALF.maxCost, `cost ${cost} with first: ${MAX_PAGE_SIZE}`);
    });
  }

  test('the heaviest storefront operation is MyOrders at 100 orders a page, and its cost is what the estimator says', () => {
    const myOrders = [...operations].find(([name]) => name === 'schema/operations MyOrders')![1];
    const cost = (first: number) => getComplexity({ schema, query: myOrders, variables: { first }, estimators: [listCostEstimator(DEFAULTS.assumedListSize)] });
    // Per order: id, status, version, createdAt (4) + total { amount currency } (3) + items: 1 + 10 × 2 (21) = 28;
    // node 29, cursor 1, edges 31; the connection: 1 + first × (totalCount 1 + pageInfo 3 + edges 31).
    assert.equal(cost(1), 1 + 35);
    assert.equal(cost(100), 1 + 100 * 35);
    assert.ok(cost(MAX_PAGE_SIZE) <= HALF.maxCost);
  });
});

/** Whether the default limits accept `text` with `variables`: parse, validation and cost, as the gateway checks them. */
function accepted(text: string, variables: Record<string, unknown> = {}): { ok: true; document: DocumentNode } | { ok: false; why: string } {
  const document = parseWithLimit(text, DEFAULTS.maxTokens);
  if (!('kind' in document) || document.kind !== 'Document') return { ok: false, why: (document as GraphQLError).message };
  const invalid = validateWithLimits(schema, document, limitValidationRules(DEFAULTS));
  if (invalid.length) return { ok: false, why: invalid.map((e) => e.message).join('; ') };
  const tooCostly = costLimiter(DEFAULTS)(schema, document, getOperationAST(document)!, variables);
  if (tooCostly) return { ok: false, why: tooCostly.message };
  return { ok: true, document };
}

/** The largest document of `part(0) ... part(n - 1)` the defaults accept; `part(n)` added would be refused. */
function fill(
  wrap: (parts: string) => string,
  part: (i: number) => string,
  variables: Record<string, unknown> = {},
): { text: string; parts: number; refusedBy: string } {
  let best = '';
  for (let n = 1; ; n++) {
    const text = wrap(Array.from({ length: n }, (_, i) => part(i)).join(' '));
    const verdict = accepted(text, variables);
    if (!verdict.ok) {
      assert.ok(n > 1, `even one part is refused: ${verdict.why}`);
      return { text: best, parts: n - 1, refusedBy: verdict.why };
    }
    best = text;
  }
}

const PRODUCT_FIELDS = 'sku name description status createdAt updatedAt price { amount currency }';
const STOCK_FIELDS = 'sku onHand reserved available version updatedAt';

/** Every field of Product and StockLevel, alternating through `stock` and `product`, `depth` levels deep below a Product. */
function productChain(depth: number): string {
  const levels: ('stock' | 'product')[] = [];
  for (let level = 2; level < depth; level++) levels.push(level % 2 === 0 ? 'stock' : 'product');
  let body = levels.length % 2 === 0 ? 'sku name' : 'sku available';
  for (const field of levels.reverse()) {
    body = field === 'stock' ? `${PRODUCT_FIELDS} stock { ${body} }` : `${STOCK_FIELDS} product { ${body} }`;
  }
  return body;
}

const ORDER_FIELDS =
  'id customerId status paymentMethod createdAt updatedAt version total { amount currency } ' +
  'shippingAddress { name line1 line2 city postalCode country } timeline { status at eventType reason } ' +
  'payment { status failureReason } shipment { id status carrier trackingNumber dispatchedAt deliveredAt } ' +
  'items { sku quantity unitPrice { amount currency } lineTotal { amount currency } product { ';

describe('the worst documents the defaults accept plan well under 100 ms', () => {
  const planner = new QueryPlanner(supergraph);
  /** The best of five plans after a warm-up: the planner's own cost, not a busy machine's or the JIT's. */
  const planMs = (document: DocumentNode) => {
    const plan = () => planner.buildQueryPlan(operationFromDocument(apiSchema, document));
    plan();
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      plan();
      best = Math.min(best, performance.now() - started);
    }
    return best;
  };

  const worst: [string, () => { text: string; variables?: Record<string, unknown>; beyond: string; refusedBy: RegExp }][] = [
    [
      'maximum depth, every field at every level',
      () => ({
        text: `{ product(sku: "SKU-0001") { ${productChain(DEFAULTS.maxDepth)} } }`,
        beyond: `{ product(sku: "SKU-0001") { ${productChain(DEFAULTS.maxDepth + 1)} } }`,
        refusedBy: /Query depth limit of 12 exceeded, found 13/,
      }),
    ],
    [
      'maximum aliases, each a chain of maximum depth through product and inventory',
      () => {
        const part = (i: number) =>
          `a${i}: product(sku: "SKU-${i}") { name stock { available product { name stock { available product { name stock { available product { name stock { available product { name stock { available product { name } } } } } } } } } } }`;
        const filled = fill((parts) => `{ ${parts} }`, part);
        assert.equal(filled.parts, DEFAULTS.maxAliases, filled.refusedBy);
        return {
          text: filled.text,
          beyond: `{ ${Array.from({ length: filled.parts + 1 }, (_, i) => part(i)).join(' ')} }`,
          refusedBy: /Aliases limit of 15 exceeded, found 16/,
        };
      },
    ],
    [
      'as many wide, deep chains as the limits let through',
      () => {
        const part = (i: number) => `a${i}: product(sku: "SKU-${i}") { ${productChain(DEFAULTS.maxDepth)} }`;
        const filled = fill((parts) => `{ ${parts} }`, part);
        return {
          text: filled.text,
          beyond: `{ ${Array.from({ length: filled.parts + 1 }, (_, i) => part(i)).join(' ')} }`,
          refusedBy: /Token limit of 1000 exceeded/,
        };
      },
    ],
    [
      "orders with everything, down to their products' stock, as many as the limits let through",
      () => {
        const part = (i: number) =>
          `o${i}: order(id: "01900000-0000-7000-8000-00000000000${i % 10}") { ${ORDER_FIELDS}${productChain(DEFAULTS.maxDepth - 2)} } } }`;
        const filled = fill((parts) => `{ ${parts} }`, part);
        return { text: filled.text, beyond: `{ ${Array.from({ length: filled.parts + 1 }, (_, i) => part(i)).join(' ')} }`, refusedBy: /limit of/ };
      },
    ],
    [
      'maximum cost: pages of products with their stock, as large as the cost limit lets through',
      () => {
        const part = (i: number) => `p${i}: products(first: ${MAX_PAGE_SIZE}) { edges { node { ${PRODUCT_FIELDS} stock { ${STOCK_FIELDS} } } } }`;
        const filled = fill((parts) => `{ ${parts} }`, part);
        return {
          text: filled.text,
          beyond: `{ ${Array.from({ length: filled.parts + 1 }, (_, i) => part(i)).join(' ')} }`,
          refusedBy: /Query cost limit of 10000 exceeded/,
        };
      },
    ],
    [
      'maximum directives: every hop into another subgraph conditional',
      () => {
        // Slots from the top: product, stock, then the chain below; the first `directives` get a condition.
        const chain = (directives: number) => {
          const condition = (slot: number) => (slot < directives ? ` @include(if: $v${slot % 5})` : '');
          let body = 'name';
          for (let level = DEFAULTS.maxDepth - 1; level >= 3; level--) {
            body = level % 2 === 1 ? `available product${condition(level - 1)} { ${body} }` : `name stock${condition(level - 1)} { ${body} }`;
          }
          return `query Conditional($v0: Boolean!, $v1: Boolean!, $v2: Boolean!, $v3: Boolean!, $v4: Boolean!) { product(sku: "SKU-0001")${condition(0)} { name stock${condition(1)} { ${body} } } }`;
        };
        return {
          text: chain(DEFAULTS.maxDirectives),
          variables: { v0: true, v1: true, v2: true, v3: true, v4: true },
          beyond: chain(DEFAULTS.maxDirectives + 1),
          refusedBy: /Directives limit of 10 exceeded, found 11/,
        };
      },
    ],
  ];

  for (const [name, build] of worst) {
    test(name, (t) => {
      const { text, variables = {}, beyond, refusedBy } = build();
      const verdict = accepted(text, variables);
      assert.ok(verdict.ok, `the defaults must accept it: ${!verdict.ok && verdict.why}`);
      const refused = accepted(beyond, variables);
      assert.ok(!refused.ok, 'one step further must be refused');
      assert.match(refused.why, refusedBy);
      const ms = planMs(verdict.document);
      t.diagnostic(`${tokenCount(text)} tokens, planned in ${ms.toFixed(1)} ms`);
      assert.ok(ms < 100, `planning took ${ms.toFixed(1)} ms`);
    });
  }
});
