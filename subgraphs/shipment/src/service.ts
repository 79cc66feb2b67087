import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { EntityManager, ServiceModule } from '@swiftcart/platform';
import type { ShipmentContext } from './context.ts';
import { Shipment, type ShipmentRecord } from './entities.ts';
import { migrations } from './migrations.ts';
import { orderEventsConsumer } from './order-events.ts';
import { findShipments } from './shipments.ts';
import { shipmentResolvers } from './resolvers.ts';

function loaderBy(em: EntityManager, key: 'id' | 'orderId'): DataLoader<string, ShipmentRecord | null> {
  return new DataLoader(async (keys) => {
    const found = await findShipments(em, key, keys);
    return keys.map((k) => found.get(k) ?? null);
  });
}

/**
 * The shipment service: one shipment per confirmed order, its carrier and tracking. It consumes
 * `order.events.v1` (OrderConfirmed, OrderCancelled) and publishes `shipment.events.v1`.
 */
export const shipmentService: ServiceModule<ShipmentContext> = {
  name: 'shipment',
  entities: [Shipment],
  migrations,
  publishesEvents: true,
  consumers: () => [orderEventsConsumer()],
  resolvers: () => shipmentResolvers() as GraphQLResolverMap<ShipmentContext>,
  context: (_runtime, base) => ({
    ...base,
    shipments: loaderBy(base.em, 'id'),
    shipmentsByOrder: loaderBy(base.em, 'orderId'),
  }),
};
