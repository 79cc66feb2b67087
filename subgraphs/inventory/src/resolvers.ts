import { checkSku, requireRole, type ServiceRuntime } from '@swiftcart/platform';
import type { StockRecord } from './entities.ts';
import type { Resolvers } from './generated/resolvers.ts';
import { followStock } from './live.ts';
import type { StockLedger } from './stock.ts';

/**
 * The inventory subgraph's resolvers. `stockLevel(sku)`, `Product.__resolveReference` and
 * `Product.stock` share one per-request loader, so an entity fetch for N products is one SQL query.
 */
export function inventoryResolvers(ledger: StockLedger, runtime: Pick<ServiceRuntime, 'live' | 'config'>): Resolvers {
  return {
    Query: {
      stockLevel: (_, { sku }, ctx) => {
        checkSku(sku);
        return ctx.stock.load(sku);
      },
    },
    Mutation: {
      adjustStock: async (_, { sku, delta, reason }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        const record = await ledger.adjust(ctx.em, { sku, delta, reason, actor: ctx.viewer.customerId! });
        // Later reads in this request (e.g. `product { stock }`) see the new figure.
        ctx.stock.clear(sku).prime(sku, record);
        return record;
      },
    },
    Product: {
      __resolveReference: async (reference, ctx) => ({ sku: reference.sku, stock: await ctx.stock.load(reference.sku) }),
      stock: (product, _, ctx) => product.stock ?? ctx.stock.load(product.sku),
    },
    StockLevel: {
      product: (stock) => ({ sku: stock.sku }),
    },
    Subscription: {
      stockLevelChanged: {
        // Errors thrown here (BAD_USER_INPUT, Redis or PostgreSQL down) reach the client as the
        // subscription's result, before anything is sent.
        subscribe: (_, { skus }, ctx) => followStock({ feed: runtime.live, config: runtime.config, em: ctx.em, log: ctx.log, skus }),
        // The iterator yields StockLevels themselves, not `{ stockLevelChanged }` payloads.
        resolve: (record: StockRecord) => record,
      },
    },
  };
}
