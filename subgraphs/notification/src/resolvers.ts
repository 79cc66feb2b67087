import { ErrorCode, apiError, canRead, isUuid, requireOrderAccess } from '@swiftcart/platform';
import type { NotificationContext } from './context.ts';
import type { NotificationRecord } from './entities.ts';
import type { Resolvers } from './generated/resolvers.ts';
import { listCustomerNotifications } from './notifications.ts';

/** A notification the viewer may read: its customer's or, for an admin, anyone's; FORBIDDEN otherwise. */
function visible(ctx: NotificationContext, notification: NotificationRecord): NotificationRecord {
  if (notification.customerId === null ? !ctx.viewer.roles.includes('admin') : !canRead(ctx.viewer, notification.customerId)) {
    throw apiError(ErrorCode.Forbidden, `Notification "${notification.id}" belongs to another customer`, { id: notification.id });
  }
  return notification;
}

/** The notification subgraph's resolvers. */
export function notificationResolvers(): Resolvers {
  return {
    Query: {
      myNotifications: (_, args, ctx) => listCustomerNotifications(ctx.em, requireOrderAccess(ctx.viewer, 'your notifications'), args),
    },
    Notification: {
      __resolveReference: async (reference, ctx) => {
        requireOrderAccess(ctx.viewer, 'a notification');
        if (!isUuid(reference.id)) return null;
        const found = await ctx.notifications.load(reference.id.toLowerCase());
        return found && visible(ctx, found);
      },
      order: (notification) => ({ id: notification.orderId }),
    },
    Order: {
      notifications: async (order, _, ctx) => {
        requireOrderAccess(ctx.viewer, 'the notifications of an order');
        if (!isUuid(order.id)) return [];
        const { owner, notifications } = await ctx.notificationsByOrder.load(order.id.toLowerCase());
        // Whose order it is decides, not each message: one about a shipment read before the order
        // names no customer yet, and is the order's customer's all the same.
        if (owner === null) return ctx.viewer.roles.includes('admin') ? [...notifications] : [];
        if (!canRead(ctx.viewer, owner)) throw apiError(ErrorCode.Forbidden, `Order "${order.id}" belongs to another customer`, { id: order.id });
        return [...notifications];
      },
    },
  };
}
