/**
 * Live sales figures (docs/live.md, docs/analytics.md): every committed change of a bucket of the
 * CURRENT generation is published, with the bucket's figures, on the channel of its granularity
 * and currency ({@link announceBuckets}), and `Subscription.salesUpdated` follows one such channel
 * ({@link followSales}).
 */
import {
  channelName,
  liveQuery,
  publishLiveIfNewer,
  type LiveFeed,
  type LiveIterator,
  type Logger,
  type Redis,
  type ServiceRuntime,
} from '@swiftcart/platform';
import type { Granularity } from './buckets.ts';
import type { SalesBucketRecord } from './entities.ts';

/** The Redis channel (with the configured prefix) of the changes of every bucket of one granularity and currency. */
export function salesChannel(config: Pick<ServiceRuntime['config'], 'redisPrefix'>, granularity: Granularity, currency: string): string {
  return channelName(config, `sales:${granularity}:${currency}`);
}

/**
 * Publishes committed buckets, once per version each: call it only after the transaction that
 * changed them has committed. Never throws (a Redis failure is logged): PostgreSQL holds the
 * figures, and a subscriber re-reads its current bucket when its connection comes back.
 */
export async function announceBuckets(
  runtime: { readonly redis: Pick<Redis, 'eval'>; readonly config: Pick<ServiceRuntime['config'], 'redisPrefix'>; readonly log: Logger },
  buckets: readonly SalesBucketRecord[],
): Promise<void> {
  for (const bucket of buckets) {
    await publishLiveIfNewer(runtime.redis, runtime.log, {
      versionKey: `sales-version:${bucket.granularity}:${bucket.currency}:${bucket.start}`,
      version: bucket.version,
      channel: salesChannel(runtime.config, bucket.granularity, bucket.currency),
      message: bucket,
    });
  }
}

/** What following the sales of one granularity and currency needs. */
export interface FollowSalesOptions {
  readonly feed: LiveFeed;
  readonly config: Pick<ServiceRuntime['config'], 'redisPrefix'>;
  readonly log: Logger;
  readonly granularity: Granularity;
  readonly currency: string;
  /** Reads the bucket the present instant falls in, from the CURRENT generation (zeros and version 0 when empty). */
  readonly current: () => Promise<SalesBucketRecord>;
}

/**
 * The current bucket, then every bucket of the granularity and currency as a change commits (a
 * past one too, when a late event lands in it), each bucket's versions only growing. The message
 * is the committed bucket itself, so a change costs the subscriber no query; only a
 * resubscription after a lost Redis connection re-reads (the current bucket: changes of past
 * buckets published meanwhile are lost with the connection).
 */
export function followSales(options: FollowSalesOptions): Promise<LiveIterator<SalesBucketRecord>> {
  const { granularity, currency } = options;
  return liveQuery<SalesBucketRecord>({
    feed: options.feed,
    channels: [salesChannel(options.config, granularity, currency)],
    load: async () => [await options.current()],
    fromMessage: (_channel, message) => {
      const bucket = JSON.parse(message) as SalesBucketRecord;
      if (bucket.granularity !== granularity || bucket.currency !== currency || typeof bucket.version !== 'number') {
        throw new Error(`not a ${granularity} ${currency} bucket`);
      }
      // The trace context rides in the message (publishLiveIfNewer); it is not part of the bucket.
      const { traceparent: _traceparent, ...figures } = bucket as SalesBucketRecord & { traceparent?: string };
      return [figures];
    },
    keyOf: (bucket) => bucket.start,
    versionOf: (bucket) => bucket.version,
    log: options.log,
  });
}
