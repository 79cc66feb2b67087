import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';

export type { Redis } from 'ioredis';

/**
 * Connects to Redis with the configured key prefix applied to every command's keys. Pub/sub channel
 * names are not prefixed by ioredis, so callers build them with {@link channelName}.
 */
export function createRedis(config: Config, log: Logger, name: string): Redis {
  const redis = new Redis(config.redisUrl, {
    keyPrefix: config.redisPrefix,
    connectionName: name,
    lazyConnect: false,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
  });
  // ioredis reconnects by itself; an unhandled 'error' event would crash the process instead.
  redis.on('error', (error: Error) => log.warn({ err: error.message, redis: name }, 'redis connection error'));
  return redis;
}

/** A pub/sub channel name under this configuration's prefix. */
export function channelName(config: Pick<Config, 'redisPrefix'>, channel: string): string {
  return `${config.redisPrefix}${channel}`;
}
