import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { ServiceModule } from '@swiftcart/platform';
import type { OrderContext } from './context.ts';
import { orderConsumers } from './consumers.ts';
import { CataloguePrice, Order, OrderItem, OrderTransition } from './entities.ts';
import { migrations } from './migrations.ts';
import { findOrders } from './orders.ts';
import { orderResolvers } from './resolvers.ts';
import { loadOrderSettings } from './settings.ts';
import { startDeadlineSweeper } from './sweeper.ts';

/**
 * The order service: orders, their lines and timelines, the local catalogue price replica, and the
 * saga's orchestrator (ADR 0008). It publishes order events through its outbox, consumes the
 * product events (price replica) and the participants' events (saga), and sweeps overdue orders.
 * `ORDER_DEADLINE_MS` and `ORDER_SWEEP_INTERVAL_MS` (settings.ts) are read from the environment
 * when the service starts.
 */
export const orderService: ServiceModule<OrderContext> = {
  name: 'order',
  entities: [Order, OrderItem, OrderTransition, CataloguePrice],
  migrations,
  publishesEvents: true,
  consumers: (runtime) => orderConsumers({ registry: runtime.events }),
  background: (runtime) => startDeadlineSweeper({
    db: runtime.db,
    log: runtime.log.child({ component: 'deadline-sweeper' }),
    registry: runtime.events,
    intervalMs: loadOrderSettings(runtime.config.vars).sweepIntervalMs,
  }),
  resolvers: (runtime) => orderResolvers({ settings: loadOrderSettings(runtime.config.vars), registry: runtime.events }) as GraphQLResolverMap<OrderContext>,
  context: (_runtime, base) => ({
    ...base,
    orders: new DataLoader(async (ids) => {
      const found = await findOrders(base.em, ids);
      return ids.map((id) => found.get(id) ?? null);
    }),
  }),
};
