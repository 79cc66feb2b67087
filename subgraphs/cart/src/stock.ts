/**
 * Live stock of a cart's skus, read from the inventory subgraph the way the gateway reads it (one
 * `_entities` call for every sku): no replica can be as fresh, and the cart only needs the figure
 * when a client asks for its warnings.
 */
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

/**
 * The units available per sku, or null when the inventory could not be asked: warnings are advice,
 * so a cart is still shown (without its stock warnings, and logged) while the inventory is away.
 */
export async function availableStock(inventory: PeerClient, skus: readonly string[], log: Logger): Promise<Map<string, number> | null> {
  if (skus.length === 0) return new Map();
  try {
    const data = await inventory.request<{ _entities: ({ sku: string; stock: { available: number } } | null)[] }>(
      STOCK_QUERY,
      { representations: skus.map((sku) => ({ __typename: 'Product', sku })) },
      { timeoutMs: STOCK_TIMEOUT_MS },
    );
    return new Map(data._entities.flatMap((entity) => (entity ? [[entity.sku, entity.stock.available] as const] : [])));
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'stock of the cart could not be read; its stock warnings are left out');
    return null;
  }
}
