import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { ServiceModule } from '@swiftcart/platform';
import type { OrderContext } from './context.ts';
import { CataloguePrice, Order, OrderItem, OrderTransition } from './entities.ts';
import { migrations } from './migrations.ts';
import { findOrders } from './orders.ts';
import { orderResolvers } from './resolvers.ts';

/** The order service: orders, their lines and timelines, and the local catalogue price replica. */
export const orderService: ServiceModule<OrderContext> = {
  name: 'order',
  entities: [Order, OrderItem, OrderTransition, CataloguePrice],
  migrations,
  resolvers: () => orderResolvers() as GraphQLResolverMap<OrderContext>,
  context: (_runtime, base) => ({
    ...base,
    orders: new DataLoader(async (ids) => {
      const found = await findOrders(base.em, ids);
      return ids.map((id) => found.get(id) ?? null);
    }),
  }),
};
