import type { Resolvers } from './generated/resolvers.ts';
import type { ShipmentContext } from './context.ts';
import type { ShipmentRecord } from './entities.ts';
import { isUuid, requireOrderAccess, requireRole } from '@swiftcart/platform';
import { dispatchShipment, markShipmentDelivered, visibleShipment } from './shipments.ts';

/** Reads one shipment through `loader` under the ownership rule; an id that is no UUID matches nothing. */
async function readShipment(ctx: ShipmentContext, loader: ShipmentContext['shipments'], id: string): Promise<ShipmentRecord | null> {
  requireOrderAccess(ctx.viewer, 'a shipment');
  const shipment = isUuid(id) ? await loader.load(id.toLowerCase()) : null;
  return visibleShipment(ctx.viewer, shipment);
}

/** The shipment subgraph's resolvers: `Shipment`, `Order.shipment` and the admin mutations. */
export function shipmentResolvers(): Resolvers {
  return {
    Order: {
      // Any id is a valid reference here: whether the order exists and may be read is the order service's call.
      __resolveReference: (reference) => ({ id: reference.id }),
      shipment: (order, _, ctx) => readShipment(ctx, ctx.shipmentsByOrder, order.id),
    },
    Shipment: {
      __resolveReference: async (reference, ctx) => {
        const shipment = await readShipment(ctx, ctx.shipments, reference.id);
        // Priming lets `Order.shipment` for the same order, later in this request, skip its query.
        if (shipment) ctx.shipmentsByOrder.prime(shipment.orderId, shipment);
        return shipment;
      },
      order: (shipment) => ({ __typename: 'Order', id: shipment.orderId }),
    },
    Mutation: {
      dispatchShipment: (_, { orderId, carrier, trackingNumber }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return dispatchShipment(ctx.em, orderId, carrier, trackingNumber);
      },
      markShipmentDelivered: (_, { orderId }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return markShipmentDelivered(ctx.em, orderId);
      },
    },
  };
}
