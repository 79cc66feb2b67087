import type DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { NotificationRecord } from './entities.ts';
import type { OrderNotifications } from './notifications.ts';

/** The notification subgraph's request context: the base context plus per-request loaders. */
export interface NotificationContext extends RequestContext {
  /** Notifications by id: one SQL query per tick. No authorisation; resolvers do it. */
  readonly notifications: DataLoader<string, NotificationRecord | null>;
  /** The notifications of each order, oldest first, and its owner: per tick. No authorisation; resolvers do it. */
  readonly notificationsByOrder: DataLoader<string, OrderNotifications>;
}
