import type { Resolvers } from './generated/resolvers.ts';
import type { OrderContext } from './context.ts';
import type { OrderRecord } from './entities.ts';
import { ErrorCode, apiError, canRead, notFound, requireOrderAccess, type ServiceRuntime } from '@swiftcart/platform';
import { type CommandDeps, cancelOrder, placeOrder } from './commands.ts';
import { followOrder } from './live.ts';
import { checkOrderId, findOrders, listCustomerOrders, visibleOrder } from './orders.ts';

/**
 * The canonical id of an order the viewer asks for: UNAUTHENTICATED without a token, FORBIDDEN
 * without the customer or admin role, BAD_USER_INPUT for an id that is no UUID.
 */
function requestedOrderId(ctx: OrderContext, id: string, field: string): string {
  requireOrderAccess(ctx.viewer, 'an order');
  return checkOrderId(id, field);
}

/**
 * The one lookup behind `order(id)`, `Order.__resolveReference` and `orderUpdated`: UNAUTHENTICATED
 * without a token, FORBIDDEN without the customer or admin role, BAD_USER_INPUT for an id that is no UUID, null for an unknown order, FORBIDDEN
 * for another customer's order unless the viewer is an admin. `fresh` skips the request's cache
 * (a subscription reads the order again after every change).
 */
async function readOrder(ctx: OrderContext, id: string, field: string, fresh = false): Promise<OrderRecord | null> {
  const key = requestedOrderId(ctx, id, field);
  if (fresh) ctx.orders.clear(key);
  return visibleOrder(ctx.viewer, await ctx.orders.load(key));
}

/** The order as a mutation committed it, read afresh (and primed for the rest of the request). */
async function committedOrder(ctx: OrderContext, id: string): Promise<OrderRecord> {
  const order = (await findOrders(ctx.em, [id])).get(id);
  if (!order) throw new Error(`order ${id} vanished after its mutation committed`);
  ctx.orders.clear(id).prime(id, order);
  return order;
}

/**
 * The fields only the order's customer or an admin may see. Every way to an Order (order, myOrders,
 * _entities, the mutations) already checks ownership; this repeats it where the data is personal.
 */
function owned<T>(ctx: OrderContext, order: OrderRecord, value: T): T {
  if (!canRead(ctx.viewer, order.customerId)) {
    throw apiError(ErrorCode.Forbidden, `Order "${order.id}" belongs to another customer`, { id: order.id });
  }
  return value;
}

/** A page of one customer's orders, primed so that a later Order field or reference in the same request costs no query. */
async function ordersOf(ctx: OrderContext, customerId: string, args: { first?: number | null; after?: string | null }) {
  const page = await listCustomerOrders(ctx.em, customerId, args);
  for (const edge of page.edges) ctx.orders.prime(edge.node.id, edge.node);
  return page;
}

/** The order subgraph's resolvers; `deps` is what the mutations need, `runtime` feeds `orderUpdated`. */
export function orderResolvers(deps: CommandDeps, runtime: Pick<ServiceRuntime, 'live' | 'config'>): Resolvers {
  return {
    Query: {
      order: (_, { id }, ctx) => readOrder(ctx, id, 'id'),
      myOrders: (_, args, ctx) => ordersOf(ctx, requireOrderAccess(ctx.viewer, 'your orders'), args),
    },
    Mutation: {
      placeOrder: async (_, { input }, ctx) => committedOrder(ctx, await placeOrder(ctx.em, ctx.viewer, input, deps)),
      cancelOrder: async (_, args, ctx) => committedOrder(ctx, await cancelOrder(ctx.em, ctx.viewer, args, deps)),
    },
    Subscription: {
      orderUpdated: {
        // Everything thrown here reaches the client as the subscription's only result, before any
        // of the order does.
        subscribe: async (_, { id }, ctx) => {
          // The cheap refusals come before any Redis subscription is made.
          const key = requestedOrderId(ctx, id, 'id');
          return followOrder({
            feed: runtime.live,
            config: runtime.config,
            log: ctx.log,
            id: key,
            read: async () => {
              const order = await readOrder(ctx, key, 'id', true);
              if (order === null) throw notFound('Order', key);
              return order;
            },
          });
        },
        // The iterator yields orders themselves, not `{ orderUpdated }` payloads.
        resolve: (order: OrderRecord) => order,
      },
    },
    Customer: {
      __resolveReference: (reference) => ({ id: reference.id }),
      orders: (customer, args, ctx) => {
        requireOrderAccess(ctx.viewer, 'the orders of a customer');
        if (!canRead(ctx.viewer, customer.id)) throw apiError(ErrorCode.Forbidden, 'A customer may read only their own orders', { id: customer.id });
        return ordersOf(ctx, customer.id, args);
      },
    },
    Order: {
      __resolveReference: (reference, ctx) => readOrder(ctx, reference.id, 'id'),
      customer: (order) => ({ id: order.customerId }),
      total: (order) => ({ amount: order.totalAmount, currency: order.currency }),
      shippingAddress: (order, _, ctx) => owned(ctx, order, order.shippingAddress),
      paymentMethod: (order, _, ctx) => owned(ctx, order, order.paymentMethod),
    },
    OrderItem: {
      lineTotal: (item) => ({ amount: item.quantity * item.unitPrice.amount, currency: item.unitPrice.currency }),
      product: (item) => ({ __typename: 'Product', sku: item.sku }),
    },
  };
}
