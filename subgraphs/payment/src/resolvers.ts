import type { Resolvers } from './generated/resolvers.ts';
import { isUuid, requireOrderAccess } from '@swiftcart/platform';
import { visiblePayment } from './payments.ts';

/** The payment subgraph's resolvers: it only adds `payment` to the order service's `Order`. */
export function paymentResolvers(): Resolvers {
  return {
    Order: {
      // Any id is a valid reference here: whether the order exists and may be read is the order service's call.
      __resolveReference: (reference) => ({ id: reference.id }),
      payment: async (order, _, ctx) => {
        requireOrderAccess(ctx.viewer, 'a payment');
        // No payment can belong to an id that is no UUID; the order service reports the bad id.
        const payment = isUuid(order.id) ? await ctx.paymentsByOrder.load(order.id.toLowerCase()) : null;
        return visiblePayment(ctx.viewer, payment);
      },
    },
  };
}
