import type { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

/**
 * Stores `value` only if the generation counter is still what the reader saw before it went to the
 * database. An invalidation bumps the counter, so a read that raced with a write can never put the
 * old row back into the cache after the write's invalidation.
 */
const SET_IF_GENERATION = `
local current = redis.call('GET', KEYS[2])
if (current or '') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0`;

/** Generation counters outlive any value by far, so a value can never outlive its counter. */
const GENERATION_TTL_SECONDS = 7 * 24 * 3600;

/** Options of one cache-aside namespace. */
export interface CacheAsideOptions {
  /** Key namespace, e.g. `product`. */
  readonly namespace: string;
  readonly ttlSeconds: number;
  readonly log: Logger;
  /**
   * Which generation counter guards a key. Defaults to the key itself (one counter per entity);
   * list caches map every key to one shared counter so any change invalidates all pages.
   */
  readonly generationOf?: (key: string) => string;
}

/** Hit and miss counts since start, for metrics and tests. */
export interface CacheStats {
  hits: number;
  misses: number;
}

/**
 * Cache-aside over Redis: reads try Redis first and fill it from the loader on a miss; writers call
 * {@link CacheAside.invalidate} after their transaction commits. Redis failures degrade to the
 * loader, never to an error, because PostgreSQL is the truth.
 */
export class CacheAside<T> {
  readonly stats: CacheStats = { hits: 0, misses: 0 };
  readonly #redis: Redis;
  readonly #options: CacheAsideOptions;

  constructor(redis: Redis, options: CacheAsideOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  #valueKey(key: string): string {
    return `cache:${this.#options.namespace}:v:${key}`;
  }

  #generationKey(key: string): string {
    const generation = this.#options.generationOf ? this.#options.generationOf(key) : key;
    return `cache:${this.#options.namespace}:g:${generation}`;
  }

  /**
   * Returns the values of `keys`, in one Redis round trip for the hits and one `load` call for all
   * the misses. `load` returns only the keys it found; absent keys come back as `null` and are not cached.
   */
  async getMany(keys: readonly string[], load: (missing: readonly string[]) => Promise<Map<string, T>>): Promise<Map<string, T | null>> {
    const result = new Map<string, T | null>();
    if (keys.length === 0) return result;
    let cached: (string | null)[] = [];
    try {
      cached = await this.#redis.mget(...keys.map((k) => this.#valueKey(k)), ...keys.map((k) => this.#generationKey(k)));
    } catch (error) {
      this.#options.log.warn({ err: (error as Error).message }, 'cache read failed; reading through');
    }
    const missing: string[] = [];
    const generations = new Map<string, string>();
    keys.forEach((key, i) => {
      const stored = cached[i];
      const generation = cached[keys.length + i] ?? '';
      // A value written under an older generation is stale: a change has committed since.
      const separator = stored == null ? -1 : stored.indexOf('\n');
      if (stored != null && stored.slice(0, separator) === generation) {
        result.set(key, JSON.parse(stored.slice(separator + 1)) as T);
      } else {
        missing.push(key);
        generations.set(key, generation);
      }
    });
    this.stats.hits += keys.length - missing.length;
    this.stats.misses += missing.length;
    if (missing.length === 0) return result;
    const loaded = await load(missing);
    const pipeline = this.#redis.pipeline();
    for (const key of missing) {
      const value = loaded.get(key);
      result.set(key, value ?? null);
      if (value === undefined) continue;
      const generation = generations.get(key) ?? '';
      pipeline.eval(
        SET_IF_GENERATION,
        2,
        this.#valueKey(key),
        this.#generationKey(key),
        generation,
        `${generation}\n${JSON.stringify(value)}`,
        this.#options.ttlSeconds,
      );
    }
    try {
      await pipeline.exec();
    } catch (error) {
      this.#options.log.warn({ err: (error as Error).message }, 'cache fill failed');
    }
    return result;
  }

  /** One key through {@link CacheAside.getMany}. */
  async get(key: string, load: (key: string) => Promise<T | undefined>): Promise<T | null> {
    const values = await this.getMany([key], async () => {
      const value = await load(key);
      return value === undefined ? new Map() : new Map([[key, value]]);
    });
    return values.get(key) ?? null;
  }

  /**
   * Bumps the generations guarding `keys` (and drops their values); call it after the change has committed. It throws
   * when Redis is unreachable, because a silently skipped invalidation would serve stale data.
   */
  async invalidate(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const pipeline = this.#redis.pipeline();
    for (const key of keys) {
      const generation = this.#generationKey(key);
      pipeline.incr(generation).expire(generation, GENERATION_TTL_SECONDS).del(this.#valueKey(key));
    }
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }
}
