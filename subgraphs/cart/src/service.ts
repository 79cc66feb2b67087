import type { GraphQLResolverMap } from '@apollo/subgraph';
import { CataloguePrice, catalogueConsumer, peerClient, type ServiceModule } from '@swiftcart/platform';
import type { CartContext } from './context.ts';
import { migrations } from './migrations.ts';
import { cartResolvers } from './resolvers.ts';
import { type CartSettings, cartSettings } from './settings.ts';
import { stockReader } from './stock.ts';
import { CartStore } from './store.ts';

/** The consumer (and inbox) that keeps the cart's catalogue replica. */
export const CATALOGUE_CONSUMER = 'cart.catalogue';

/**
 * The cart service: one cart per customer in Redis (ADR 0021), priced from its own replica of the
 * catalogue (PostgreSQL, fed by product events), checked out through the order service. It
 * publishes no events: a cart is a customer's scratch pad, the order is the record.
 */
export const cartService: ServiceModule<CartContext, CartSettings> = {
  name: 'cart',
  entities: [CataloguePrice],
  migrations,
  settings: cartSettings,
  peers: ['order', 'inventory'],
  consumers: () => [catalogueConsumer(CATALOGUE_CONSUMER)],
  resolvers: (runtime) =>
    cartResolvers({
      runtime,
      store: new CartStore({ redis: runtime.redis, config: runtime.config, ttlMs: runtime.settings.ttlMs }),
      orders: peerClient(runtime.config, 'order'),
      stock: stockReader(peerClient(runtime.config, 'inventory'), runtime.log),
    }) as GraphQLResolverMap<CartContext>,
};
