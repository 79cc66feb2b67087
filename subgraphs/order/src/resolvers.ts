import type { Resolvers } from './generated/resolvers.ts';
import type { OrderContext } from './context.ts';
import type { OrderRecord } from './entities.ts';
import { requireCustomer } from '@swiftcart/platform';
import { checkOrderId, listCustomerOrders, visibleOrder } from './orders.ts';

/**
 * The one lookup behind `order(id)` and `Order.__resolveReference`: UNAUTHENTICATED without a token,
 * BAD_USER_INPUT for an id that is no UUID, null for an unknown order, FORBIDDEN for another
 * customer's order unless the viewer is an admin.
 */
async function readOrder(ctx: OrderContext, id: string, field: string): Promise<OrderRecord | null> {
  requireCustomer(ctx.viewer, 'an order');
  const key = checkOrderId(id, field);
  return visibleOrder(ctx.viewer, await ctx.orders.load(key));
}

/** The order subgraph's resolvers. */
export function orderResolvers(): Resolvers {
  return {
    Query: {
      order: (_, { id }, ctx) => readOrder(ctx, id, 'id'),
      myOrders: async (_, args, ctx) => {
        const customerId = requireCustomer(ctx.viewer, 'your orders');
        const page = await listCustomerOrders(ctx.em, customerId, args);
        // A later Order field or reference in the same request then costs no query.
        for (const edge of page.edges) ctx.orders.prime(edge.node.id, edge.node);
        return page;
      },
    },
    Order: {
      __resolveReference: (reference, ctx) => readOrder(ctx, reference.id, 'id'),
      total: (order) => ({ amount: order.totalAmount, currency: order.currency }),
    },
    OrderItem: {
      lineTotal: (item) => ({ amount: item.quantity * item.unitPrice.amount, currency: item.unitPrice.currency }),
      product: (item) => ({ __typename: 'Product', sku: item.sku }),
    },
  };
}
