/**
 * Batched entity resolution and stock reads of the inventory subgraph, against real PostgreSQL:
 * `node --test subgraphs/inventory/test/`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { seedStock } from '../src/stock.ts';
import { auditRows, em, setReserved, stockRow } from './support.ts';

const ENTITIES = `query($r: [_Any!]!) {
  _entities(representations: $r) { ... on Product { sku stock { sku onHand reserved available version updatedAt } } }
}`;

describe('inventory reads', () => {
  let stack: TestStack;
  const runtime = () => stack.services.inventory!.runtime;
  const known = Array.from({ length: 100 }, (_, i) => `BATCH-${String(i).padStart(3, '0')}`);

  before(async () => {
    stack = await startStack({ services: ['inventory'], countQueries: true });
    // The outbox relay polls on the same pool; the reads under test must be the only queries counted.
    await stack.services.inventory!.relay?.stop();
    assert.equal(
      await seedStock(
        em(stack),
        known.map((sku, i) => ({ sku, onHand: i + 1 })),
      ),
      100,
    );
    // Some reserved units, so that available differs from on hand.
    await setReserved(stack, 'BATCH-010', 4);
  });
  after(() => stack?.close());

  test('an entity fetch of 100 products runs exactly ONE SQL query, unknown skus resolve to zero', async () => {
    const unknown = ['NEVER-1', 'NEVER-2', 'NEVER-3', 'NEVER-4'];
    const skus = [...known.slice(0, 96), ...unknown];
    const representations = skus.map((sku) => ({ __typename: 'Product', sku }));
    const beforeCount = runtime().db.queryCount;
    const result = await stack.graphql(ENTITIES, { variables: { r: representations }, url: stack.services.inventory!.url });
    const queries = runtime().db.queryCount - beforeCount;
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(queries, 1, 'one SQL query for all 100 representations');
    const entities = result.data._entities as { sku: string; stock: any }[];
    assert.equal(entities.length, 100);
    assert.deepEqual(
      entities.map((e) => e.sku),
      skus,
      'entities come back in representation order',
    );
    entities.slice(0, 96).forEach((entity, i) => {
      const onHand = i + 1;
      const reserved = entity.sku === 'BATCH-010' ? 4 : 0;
      assert.equal(entity.stock.sku, entity.sku);
      assert.equal(entity.stock.onHand, onHand, entity.sku);
      assert.equal(entity.stock.reserved, reserved, entity.sku);
      assert.equal(entity.stock.available, onHand - reserved, entity.sku);
      assert.equal(entity.stock.version, 1, entity.sku);
      assert.ok(!Number.isNaN(Date.parse(entity.stock.updatedAt)), entity.sku);
    });
    assert.equal(entities[10].stock.available, 7);
    for (const entity of entities.slice(96)) {
      assert.deepEqual(entity.stock, { sku: entity.sku, onHand: 0, reserved: 0, available: 0, version: 0, updatedAt: null });
    }
  });

  test('stockLevel and __resolveReference share one loader: one query for both in one request', async () => {
    const beforeCount = runtime().db.queryCount;
    const result = await stack.graphql(
      `query($r: [_Any!]!) {
      a: stockLevel(sku: "BATCH-050") { onHand available product { sku } }
      b: stockLevel(sku: "NEVER-9") { onHand version updatedAt }
      _entities(representations: $r) { ... on Product { stock { onHand } } }
    }`,
      {
        variables: {
          r: [
            { __typename: 'Product', sku: 'BATCH-050' },
            { __typename: 'Product', sku: 'BATCH-051' },
          ],
        },
      },
    );
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.equal(runtime().db.queryCount - beforeCount, 1);
    assert.deepEqual(result.data.a, { onHand: 51, available: 51, product: { sku: 'BATCH-050' } });
    assert.deepEqual(result.data.b, { onHand: 0, version: 0, updatedAt: null });
    assert.deepEqual(result.data._entities, [{ stock: { onHand: 51 } }, { stock: { onHand: 52 } }]);
  });

  test('stockLevel with a malformed sku is BAD_USER_INPUT', async () => {
    const result = await stack.graphql('{ stockLevel(sku: "no spaces") { onHand } }');
    assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT');
    assert.equal(result.errors?.[0].extensions?.field, 'sku');
  });

  test('seedStock inserts 1,000 rows well under a second, idempotently, with an audit row each', async () => {
    const rows = Array.from({ length: 1_000 }, (_, i) => ({ sku: `SEED-${i}`, onHand: i % 7 }));
    const started = performance.now();
    assert.equal(await seedStock(em(stack), rows), 1_000);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 1_000, `seeding 1,000 rows took ${elapsed.toFixed(0)} ms`);
    // Again, with one new row and an existing row with another figure: only the new row goes in.
    assert.equal(await seedStock(em(stack), [...rows, { sku: 'SEED-0', onHand: 99 }, { sku: 'SEED-NEW', onHand: 3 }]), 1);
    assert.deepEqual(await stockRow(stack, 'SEED-0'), { on_hand: 0, reserved: 0, version: 1 });
    assert.deepEqual(await stockRow(stack, 'SEED-6'), { on_hand: 6, reserved: 0, version: 1 });
    assert.deepEqual(await auditRows(stack, 'SEED-6'), [{ delta: 6, reason: 'initial stock', actor: 'system:seed', on_hand_after: 6 }]);
    assert.deepEqual(await auditRows(stack, 'SEED-0'), [], 'no audit row for zero units');
    await assert.rejects(seedStock(em(stack), [{ sku: 'bad sku', onHand: 1 }]), /invalid sku/);
    await assert.rejects(seedStock(em(stack), [{ sku: 'OK', onHand: -1 }]), /onHand/);
  });
});
