import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export type { Redis } from 'ioredis';

/** What sets a connection apart from the process's ordinary command connection. */
export interface RedisConnectionOptions {
  /**
   * A pub/sub subscriber (platform/src/live.ts): no key prefix, since ioredis never prefixes channel
   * names (callers build them with {@link channelName}); and neither the ready check (INFO) nor
   * CLIENT SETINFO, which Redis refuses once the first SUBSCRIBE has put the connection in
   * subscriber mode, and which can race it (ioredis issue #2037).
   */
  readonly subscriber?: boolean;
  /**
   * Fail at once rather than wait for a Redis that is away (the gateway's rate limits, which count
   * in memory meanwhile): no offline queue, no retry of a command, and a command that takes longer
   * than this many milliseconds fails.
   */
  readonly failFastMs?: number;
  /** Commands sent in the same tick share one write to Redis. */
  readonly autoPipelining?: boolean;
  /** Replaces the default handling of connection errors: a warning naming the connection. */
  readonly onError?: (error: Error) => void;
}

/**
 * Connects to Redis with the configured key prefix applied to every command's keys, as `name`
 * (`CLIENT LIST` shows it). Pub/sub channel names are not prefixed by ioredis, so callers build
 * them with {@link channelName}. ioredis reconnects by itself; connection errors are logged.
 */
export function createRedis(config: Pick<Config, 'redisUrl' | 'redisPrefix'>, log: Logger, name: string, options: RedisConnectionOptions = {}): Redis {
  const failFast = options.failFastMs !== undefined;
  const redis = new Redis(config.redisUrl, {
    ...(options.subscriber ? { enableReadyCheck: false, disableClientInfo: true } : { keyPrefix: config.redisPrefix }),
    connectionName: name,
    lazyConnect: false,
    maxRetriesPerRequest: failFast ? 0 : 2,
    enableOfflineQueue: !failFast,
    ...(failFast && { commandTimeout: options.failFastMs }),
    ...(options.autoPipelining && { enableAutoPipelining: true }),
  });
  // An unhandled 'error' event would crash the process instead.
  redis.on('error', options.onError ?? ((error: Error) => log.warn({ err: error.message, redis: name }, 'redis connection error')));
  return redis;
}

/** A pub/sub channel name under this configuration's prefix. */
export function channelName(config: Pick<Config, 'redisPrefix'>, channel: string): string {
  return `${config.redisPrefix}${channel}`;
}
