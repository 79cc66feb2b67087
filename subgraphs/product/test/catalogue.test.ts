import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack } from '../../../test/support/stack.ts';

const PRODUCT_FIELDS = 'sku name description price { amount currency } status';

describe('product subgraph', () => {
  let stack: TestStack;
  let admin: string;
  let customer: string;

  before(async () => {
    stack = await startStack({ services: ['product'] });
    admin = await stack.token('root', ['admin']);
    customer = await stack.token('alice', ['customer']);
    for (let n = 1; n <= 25; n++) {
      const sku = `P-${String(n).padStart(3, '0')}`;
      const result = await stack.graphql(`mutation($i: CreateProductInput!) { createProduct(input: $i) { sku } }`, {
        token: admin,
        variables: { i: { sku, name: n % 2 ? `Blue Mug ${n}` : `Red Kettle ${n}`, price: { amount: n * 100, currency: 'EUR' } } },
      });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    }
  });
  after(() => stack?.close());

  const count = async () => (await stack.graphql('{ products(first: 1) { totalCount } }')).data.products.totalCount as number;

  it('pages through products by cursor without gaps or repeats', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const result: any = await stack.graphql(
        `query($after: String) { products(first: 10, after: $after) { edges { cursor node { sku } } pageInfo { hasNextPage endCursor } totalCount } }`,
        { variables: { after } },
      );
      assert.equal(result.errors, undefined);
      const page = result.data.products;
      assert.equal(page.totalCount, 25);
      seen.push(...page.edges.map((e: any) => e.node.sku));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
      pages++;
    } while (after);
    assert.equal(pages, 3);
    assert.equal(seen.length, 25);
    assert.deepEqual(seen, [...seen].sort());
    assert.equal(new Set(seen).size, 25);
  });

  it('filters by search text and price range', async () => {
    const result = await stack.graphql(
      `{ products(first: 100, filter: { search: "kettle", minPrice: 500, maxPrice: 1200 }) { edges { node { sku price { amount } } } totalCount } }`,
    );
    assert.equal(result.errors, undefined);
    const skus = result.data.products.edges.map((e: any) => e.node.sku);
    assert.deepEqual(skus, ['P-006', 'P-008', 'P-010', 'P-012']);
    assert.equal(result.data.products.totalCount, 4);
  });

  it('reads a product by sku, and null for an unknown sku', async () => {
    const result = await stack.graphql(`{ a: product(sku: "P-003") { ${PRODUCT_FIELDS} } b: product(sku: "NOPE-1") { sku } }`);
    assert.equal(result.errors, undefined);
    assert.deepEqual(result.data.a, { sku: 'P-003', name: 'Blue Mug 3', description: '', price: { amount: 300, currency: 'EUR' }, status: 'ACTIVE' });
    assert.equal(result.data.b, null);
  });

  it('cache-aside: after updateProduct the next read shows the new value, never the stale one', async () => {
    // Warm both caches: the entity and the listing page.
    for (let i = 0; i < 2; i++) {
      const warm = await stack.graphql(`{ product(sku: "P-004") { name price { amount } } products(first: 5) { edges { node { sku name } } } }`);
      assert.equal(warm.data.product.name, 'Red Kettle 4');
    }
    const redisKeys = await stack.services.product!.runtime.redis.keys(`${stack.config.redisPrefix}cache:product:*`);
    assert.ok(redisKeys.length > 0, 'the read went through the Redis cache');
    for (let version = 1; version <= 5; version++) {
      const update = await stack.graphql(
        `mutation { updateProduct(sku: "P-004", input: { name: "Kettle v${version}", price: { amount: ${1000 + version}, currency: "EUR" } }) { name } }`,
        { token: admin },
      );
      assert.equal(update.errors, undefined, JSON.stringify(update.errors));
      const read = await stack.graphql(`{ product(sku: "P-004") { name price { amount } } products(first: 5) { edges { node { sku name } } } }`);
      assert.equal(read.data.product.name, `Kettle v${version}`);
      assert.equal(read.data.product.price.amount, 1000 + version);
      const listed = read.data.products.edges.find((e: any) => e.node.sku === 'P-004');
      assert.equal(listed.node.name, `Kettle v${version}`);
    }
  });

  it('cache-aside: concurrent reads racing an update never leave a stale value cached', async () => {
    for (let round = 0; round < 10; round++) {
      const name = `Race ${round}`;
      const reads = Array.from({ length: 8 }, () => stack.graphql(`{ product(sku: "P-005") { name } }`));
      const update = stack.graphql(`mutation { updateProduct(sku: "P-005", input: { name: "${name}" }) { name } }`, { token: admin });
      await Promise.all([...reads, update]);
      const after = await stack.graphql(`{ product(sku: "P-005") { name } }`);
      assert.equal(after.data.product.name, name, `round ${round}`);
    }
  });

  it('discontinues a product, idempotently', async () => {
    for (let i = 0; i < 2; i++) {
      const result = await stack.graphql(`mutation { discontinueProduct(sku: "P-007") { status } }`, { token: admin });
      assert.equal(result.data.discontinueProduct.status, 'DISCONTINUED');
    }
    const listed = await stack.graphql(`{ products(first: 100, filter: { status: DISCONTINUED }) { edges { node { sku } } } }`);
    assert.deepEqual(
      listed.data.products.edges.map((e: any) => e.node.sku),
      ['P-007'],
    );
  });

  describe('bad input gets a clear error and changes nothing', () => {
    const cases: [string, string, string, string | null][] = [
      [
        'negative price on create',
        `mutation { createProduct(input: { sku: "NEW-1", name: "x", price: { amount: -1, currency: "EUR" } }) { sku } }`,
        'BAD_USER_INPUT',
        'admin',
      ],
      [
        'bad currency',
        `mutation { createProduct(input: { sku: "NEW-2", name: "x", price: { amount: 1, currency: "euro" } }) { sku } }`,
        'BAD_USER_INPUT',
        'admin',
      ],
      [
        'bad sku',
        `mutation { createProduct(input: { sku: "has space", name: "x", price: { amount: 1, currency: "EUR" } }) { sku } }`,
        'BAD_USER_INPUT',
        'admin',
      ],
      ['duplicate sku', `mutation { createProduct(input: { sku: "P-001", name: "x", price: { amount: 1, currency: "EUR" } }) { sku } }`, 'CONFLICT', 'admin'],
      [
        'negative price on update',
        `mutation { updateProduct(sku: "P-001", input: { price: { amount: -5, currency: "EUR" } }) { sku } }`,
        'BAD_USER_INPUT',
        'admin',
      ],
      ['empty update', `mutation { updateProduct(sku: "P-001", input: {}) { sku } }`, 'BAD_USER_INPUT', 'admin'],
      ['unknown sku on update', `mutation { updateProduct(sku: "NOPE-1", input: { name: "x" }) { sku } }`, 'NOT_FOUND', 'admin'],
      ['unknown sku on discontinue', `mutation { discontinueProduct(sku: "NOPE-1") { sku } }`, 'NOT_FOUND', 'admin'],
      ['malformed cursor', `{ products(after: "not a cursor!") { totalCount } }`, 'BAD_USER_INPUT', null],
      ['well-formed base64 that is no cursor', `{ products(after: "aGVsbG8") { totalCount } }`, 'BAD_USER_INPUT', null],
      ['page size 0', `{ products(first: 0) { totalCount } }`, 'BAD_USER_INPUT', null],
      ['page size 101', `{ products(first: 101) { totalCount } }`, 'BAD_USER_INPUT', null],
      ['inverted price range', `{ products(filter: { minPrice: 10, maxPrice: 5 }) { totalCount } }`, 'BAD_USER_INPUT', null],
      ['no token on an admin mutation', `mutation { updateProduct(sku: "P-001", input: { name: "hacked" }) { sku } }`, 'FORBIDDEN', null],
      ['customer token on an admin mutation', `mutation { updateProduct(sku: "P-001", input: { name: "hacked" }) { sku } }`, 'FORBIDDEN', 'customer'],
      [
        'customer creating a product',
        `mutation { createProduct(input: { sku: "NEW-3", name: "x", price: { amount: 1, currency: "EUR" } }) { sku } }`,
        'FORBIDDEN',
        'customer',
      ],
      ['a query that fails validation', `{ product(sku: "P-001") { nosuchfield } }`, 'GRAPHQL_VALIDATION_FAILED', null],
    ];
    for (const [name, query, code, who] of cases) {
      it(name, async () => {
        const before = await count();
        const snapshot = await stack.graphql(`{ product(sku: "P-001") { ${PRODUCT_FIELDS} } }`);
        const result = await stack.graphql(query, { token: who === 'admin' ? admin : who === 'customer' ? customer : null });
        assert.ok(result.errors?.length, 'an error is returned');
        assert.equal(result.errors![0].extensions?.code, code, result.errors![0].message);
        assert.ok(result.errors![0].message.length > 10, 'the message says what is wrong');
        assert.equal(result.data?.createProduct ?? result.data?.updateProduct ?? null, null);
        assert.equal(await count(), before, 'no product was added');
        assert.deepEqual((await stack.graphql(`{ product(sku: "P-001") { ${PRODUCT_FIELDS} } }`)).data, snapshot.data, 'P-001 is unchanged');
      });
    }
  });

  it('an invalid token is UNAUTHENTICATED, not anonymous', async () => {
    const result = await stack.graphql(`{ product(sku: "P-001") { sku } }`, { token: `${admin.slice(0, -4)}AAAA` });
    assert.equal(result.status, 401);
    assert.equal(result.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
  });
});
