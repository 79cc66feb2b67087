/**
 * Live orders (docs/live.md): every committed change of an order is announced on its Redis channel
 * `order:<id>` ({@link OrderAnnouncer}), and `Subscription.orderUpdated` follows one order
 * ({@link followOrder}). The message only says which version the order reached: a subscription
 * re-reads the whole order (lines, timeline) from PostgreSQL, so what it sends is always committed
 * truth, and the gateway can resolve `payment` and `shipment` from the other subgraphs per event.
 */
import {
  channelName,
  liveQuery,
  publishLiveIfNewer,
  type LiveFeed,
  type LiveIterator,
  type Logger,
  type OutboxProjector,
  type ServiceRuntime,
} from '@swiftcart/platform';
import type { OrderRecord, OrderStatus } from './entities.ts';

/** What an order's channel carries after a change commits. */
export interface OrderChange {
  readonly id: string;
  readonly status: OrderStatus;
  /** The order's version after the change (`Order.version`). */
  readonly version: number;
}

/** The Redis channel (with the configured prefix) of one order's changes; `id` canonical (lower-case). */
export function orderChannel(config: Pick<ServiceRuntime['config'], 'redisPrefix'>, id: string): string {
  return channelName(config, `order:${id}`);
}

/** Publishes committed order changes; one per service process. */
export class OrderAnnouncer {
  readonly #runtime: Pick<ServiceRuntime, 'redis' | 'config' | 'log'>;

  constructor(runtime: Pick<ServiceRuntime, 'redis' | 'config' | 'log'>) {
    this.#runtime = runtime;
  }

  /**
   * Announces `change`, once per version: call it only after the transaction that made it has
   * committed. Never throws: a Redis failure is logged, the command that changed the order has
   * succeeded all the same, and a subscriber re-reads the order when its connection comes back.
   */
  async announce(change: OrderChange): Promise<void> {
    const { redis, config, log } = this.#runtime;
    await publishLiveIfNewer(redis, log, {
      versionKey: `order-version:${change.id}`,
      version: change.version,
      channel: orderChannel(config, change.id),
      message: change,
    });
  }
}

/** The live change (platform `enqueueLive`) that carries an order's new version to its subscribers. */
export const ORDER_CHANGED = 'OrderChanged';

/** The order service's outbox projector: announces every committed order change the relay hands over. */
export function projectOrders(announcer: OrderAnnouncer): OutboxProjector {
  return async (rows) => {
    for (const row of rows) if (row.type === ORDER_CHANGED) await announcer.announce(row.payload as OrderChange);
  };
}

/** What following an order needs. */
export interface FollowOrderOptions {
  readonly feed: LiveFeed;
  readonly config: Pick<ServiceRuntime['config'], 'redisPrefix'>;
  readonly log: Logger;
  /** The canonical order id. */
  readonly id: string;
  /**
   * Reads the order afresh (never from a cache) with the caller's authorisation applied; throws the
   * caller's error (NOT_FOUND, FORBIDDEN) when it may not be followed.
   */
  readonly read: () => Promise<OrderRecord>;
}

/**
 * The order now, then the order after each committed change, versions only growing. Subscribes
 * before the first read, so a change that commits meanwhile is not missed; the first read's error
 * (NOT_FOUND, FORBIDDEN) rejects the call, holding nothing.
 */
export function followOrder(options: FollowOrderOptions): Promise<LiveIterator<OrderRecord>> {
  return liveQuery<OrderRecord>({
    feed: options.feed,
    channels: [orderChannel(options.config, options.id)],
    load: async () => [await options.read()],
    // Every message means "re-read": the message is too small to be the order, and reads coalesce
    // while the client is slow, so a burst of changes costs one read.
    fromMessage: () => null,
    keyOf: (order) => order.id,
    versionOf: (order) => order.version,
    log: options.log,
  });
}
