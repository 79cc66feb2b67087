/**
 * The cart's stock reader, with the inventory replaced by a recorder of its calls and the cache's
 * clock injected: one call for the skus of a tick, figures reused while fresh and asked again after,
 * and a cart shown without stock (null) while the inventory fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, type PeerClient } from '@swiftcart/platform';
import { STOCK_FRESH_MS, stockReader } from '../src/stock.ts';

/** An inventory that answers `available` per sku and records the skus of every call. */
function inventory(available: Record<string, number>, failing = { now: false }) {
  const calls: string[][] = [];
  const client: PeerClient = {
    urls: ['http://inventory.invalid/graphql'],
    async request<T>(_query: string, variables: Record<string, unknown> = {}): Promise<T> {
      const skus = (variables.representations as { sku: string }[]).map((r) => r.sku);
      calls.push(skus);
      if (failing.now) throw new Error('connect ECONNREFUSED');
      return { _entities: skus.map((sku) => (sku in available ? { sku, stock: { available: available[sku] } } : null)) } as T;
    },
  };
  return { client, calls };
}

const log = createLogger('cart-test', 'fatal');

describe('stockReader', () => {
  it('asks once for the skus of one tick, and reuses the figures while they are fresh', async () => {
    const clock = { t: 1_000, now: () => clock.t };
    const { client, calls } = inventory({ A: 3, B: 0, C: 9 });
    const read = stockReader(client, log, { clock });
    const [first, second] = await Promise.all([read(['A', 'B']), read(['B', 'C'])]);
    assert.deepEqual(
      [...first!],
      [
        ['A', 3],
        ['B', 0],
      ],
    );
    assert.deepEqual(
      [...second!],
      [
        ['B', 0],
        ['C', 9],
      ],
    );
    assert.deepEqual(calls, [['A', 'B', 'C']]);
    clock.t = 1_000 + STOCK_FRESH_MS - 1;
    await read(['A', 'C']);
    assert.equal(calls.length, 1, 'still fresh');
    clock.t = 1_000 + STOCK_FRESH_MS + 1;
    await read(['A']);
    assert.deepEqual(calls.at(-1), ['A'], 'asked again once stale');
  });

  it('answers null (no stock warnings) while the inventory fails, and asks again once that is stale', async () => {
    const clock = { t: 1_000, now: () => clock.t };
    const failing = { now: true };
    const { client, calls } = inventory({ A: 3 }, failing);
    const read = stockReader(client, log, { clock });
    assert.equal(await read(['A']), null);
    assert.equal(await read(['A']), null);
    assert.equal(calls.length, 1, 'a failure is kept as long as a figure, not retried per cart');
    failing.now = false;
    clock.t = 1_000 + STOCK_FRESH_MS + 1;
    assert.deepEqual([...(await read(['A']))!], [['A', 3]]);
  });

  it('answers null for a sku the inventory does not know, and an empty map for no skus', async () => {
    const { client, calls } = inventory({ A: 3 });
    const read = stockReader(client, log);
    assert.equal(await read(['A', 'NOPE']), null);
    assert.deepEqual([...(await read([]))!], []);
    assert.equal(calls.length, 1);
  });
});
