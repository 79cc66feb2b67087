/**
 * End to end through the gateway: real subgraphs, real PostgreSQL, Redis and Kafka. One query spans
 * the product and inventory subgraphs, and the values come back right from both.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack } from '../support/stack.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { seedCatalogue } from '../../scripts/seed.ts';

const PRODUCTS = `query Products($after: String) {
  products(first: 20, after: $after) {
    edges { node { sku name price { amount currency } stock { onHand reserved available } } }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}`;

describe('federated products through the gateway', () => {
  let stack: TestStack;
  const catalogue = seedCatalogue(60);

  before(async () => {
    stack = await startStack({ services: ['product', 'inventory', 'order', 'payment', 'shipment'], gateway: true });
    await seedProducts(stack.services.product!.runtime.db.fork(), catalogue.products);
    // Every third product has no stock row at all: inventory must answer zeros for it.
    await seedStock(
      stack.services.inventory!.runtime.db.fork(),
      catalogue.stock.filter((_, i) => i % 3 !== 2),
    );
  });
  after(() => stack?.close());

  it('products(first: 20) returns name and price from product and stock.available from inventory', async () => {
    const result = await stack.graphql(PRODUCTS);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const page = result.data.products;
    assert.equal(page.edges.length, 20);
    assert.equal(page.totalCount, 60);
    assert.equal(page.pageInfo.hasNextPage, true);
    page.edges.forEach((edge: any, i: number) => {
      const expected = catalogue.products[i];
      const stocked = i % 3 !== 2;
      assert.equal(edge.node.sku, expected.sku);
      assert.equal(edge.node.name, expected.name);
      assert.deepEqual(edge.node.price, { amount: expected.priceAmount, currency: 'EUR' });
      const onHand = stocked ? catalogue.stock[i].onHand : 0;
      assert.deepEqual(edge.node.stock, { onHand, reserved: 0, available: onHand }, expected.sku);
    });
  });

  it('pages through all 60 products with cursors, stock resolved on every page', async () => {
    const skus: string[] = [];
    let after: string | null = null;
    do {
      const result: any = await stack.graphql(PRODUCTS, { variables: { after } });
      assert.equal(result.errors, undefined);
      for (const edge of result.data.products.edges) {
        skus.push(edge.node.sku);
        assert.equal(typeof edge.node.stock.available, 'number');
      }
      after = result.data.products.pageInfo.hasNextPage ? result.data.products.pageInfo.endCursor : null;
    } while (after);
    assert.deepEqual(
      skus,
      catalogue.products.map((p) => p.sku),
    );
  });

  it('an admin stock adjustment through the gateway shows in the next federated read', async () => {
    const admin = await stack.token('root', ['admin']);
    const adjusted = await stack.graphql(`mutation { adjustStock(sku: "SKU-0001", delta: -3, reason: "damaged") { onHand available version } }`, {
      token: admin,
    });
    assert.equal(adjusted.errors, undefined, JSON.stringify(adjusted.errors));
    assert.equal(adjusted.data.adjustStock.onHand, catalogue.stock[0].onHand - 3);
    const read = await stack.graphql(`{ product(sku: "SKU-0001") { name stock { available } } }`);
    assert.deepEqual(read.data.product, { name: catalogue.products[0].name, stock: { available: catalogue.stock[0].onHand - 3 } });
  });

  it('bad input through the gateway: a clear error and nothing changes', async () => {
    const customer = await stack.token('alice', ['customer']);
    const admin = await stack.token('root', ['admin']);
    const before = await stack.graphql(`{ product(sku: "SKU-0002") { price { amount } stock { onHand } } }`);
    const cases: [string, string | null, string][] = [
      [`mutation { adjustStock(sku: "SKU-0002", delta: -100000, reason: "x") { onHand } }`, admin, 'INSUFFICIENT_STOCK'],
      [`mutation { adjustStock(sku: "SKU-0002", delta: 5, reason: "x") { onHand } }`, customer, 'FORBIDDEN'],
      [`mutation { adjustStock(sku: "SKU-0002", delta: 5, reason: "x") { onHand } }`, null, 'FORBIDDEN'],
      [`mutation { updateProduct(sku: "SKU-0002", input: { price: { amount: -1, currency: "EUR" } }) { sku } }`, admin, 'BAD_USER_INPUT'],
      [`mutation { updateProduct(sku: "NOPE-404", input: { name: "x" }) { sku } }`, admin, 'NOT_FOUND'],
      [`{ products(first: 5, after: "garbage") { totalCount } }`, null, 'BAD_USER_INPUT'],
      [`{ products(first: 5) { edges { node { sku nope } } } }`, null, 'GRAPHQL_VALIDATION_FAILED'],
    ];
    for (const [query, token, code] of cases) {
      const result = await stack.graphql(query, { token });
      assert.equal(result.errors?.[0]?.extensions?.code, code, `${query}: ${JSON.stringify(result.errors)}`);
    }
    const after = await stack.graphql(`{ product(sku: "SKU-0002") { price { amount } stock { onHand } } }`);
    assert.deepEqual(after.data, before.data);
  });
});
