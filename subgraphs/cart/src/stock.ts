/**
 * Live stock of a cart's skus, read from the inventory subgraph the way the gateway reads it (one
 * `_entities` call for the skus of a tick): no replica can be as fresh, and the cart needs the
 * figure only for its warnings. A figure is kept for {@link STOCK_FRESH_MS}: warnings are advice,
 * a second old at most, and a customer's tabs re-reading their cart after every change then cost
 * the inventory one call a second, not one each. Checkout never relies on it: the saga reserves.
 */
import DataLoader from 'dataloader';
import { LRUCache } from 'lru-cache';
import type { Logger, PeerClient } from '@swiftcart/platform';

const STOCK_QUERY = /* GraphQL */ `
  query CartStock($representations: [_Any!]!) {
    _entities(representations: $representations) {
      ... on Product {
        sku
        stock {
          available
        }
      }
    }
  }
`;

/** How long a cart waits for the inventory before it shows its warnings without stock. */
const STOCK_TIMEOUT_MS = 2_000;

/** How long a stock figure is used before the inventory is asked again. */
export const STOCK_FRESH_MS = 1_000;

/** Skus whose figures are kept at most (a few hundred KiB). */
const STOCK_CACHE_SKUS = 10_000;

/** The units available per sku, or null for a sku whose figure could not be read. */
export type StockReader = (skus: readonly string[]) => Promise<ReadonlyMap<string, number> | null>;

/**
 * A reader of available stock for the process: the skus asked for in one tick go to the inventory
 * in one call, and each figure is kept for {@link STOCK_FRESH_MS}. While the inventory is away a
 * cart is still shown, without its stock warnings (null; logged), and the failure is kept for as
 * long as a figure would be, so a burst of carts does not queue calls to a service that is down.
 */
export function stockReader(inventory: PeerClient, log: Logger, options: { readonly clock?: { now(): number } } = {}): StockReader {
  const loader = new DataLoader<string, number | null>(
    async (skus) => {
      try {
        const data = await inventory.request<{ _entities: ({ sku: string; stock: { available: number } } | null)[] }>(
          STOCK_QUERY,
          { representations: skus.map((sku) => ({ __typename: 'Product', sku })) },
          { timeoutMs: STOCK_TIMEOUT_MS },
        );
        const found = new Map(data._entities.flatMap((entity) => (entity ? [[entity.sku, entity.stock.available] as const] : [])));
        return skus.map((sku) => found.get(sku) ?? null);
      } catch (error) {
        log.warn({ err: (error as Error).message }, 'stock of carts could not be read; their stock warnings are left out');
        return skus.map(() => null);
      }
    },
    {
      cacheMap: new LRUCache<string, Promise<number | null>>({
        max: STOCK_CACHE_SKUS,
        ttl: STOCK_FRESH_MS,
        // A test's clock is read every time; the real one at most once per millisecond.
        ...(options.clock ? { perf: options.clock, ttlResolution: 0 } : {}),
      }),
    },
  );
  return async (skus) => {
    if (skus.length === 0) return new Map();
    const figures = await loader.loadMany(skus);
    if (figures.some((figure) => typeof figure !== 'number')) return null;
    return new Map(skus.map((sku, i) => [sku, figures[i] as number]));
  };
}
