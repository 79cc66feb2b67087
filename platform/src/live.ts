/**
 * Live updates from Redis pub/sub for GraphQL subscriptions (docs/live.md).
 *
 * Services publish a small message on a channel after the transaction that changed something has
 * committed ({@link publishLiveIfNewer}). A subscribing process holds ONE subscriber connection
 * ({@link LiveFeed}) whatever the number of subscriptions: channels are SUBSCRIBEd when their first
 * listener arrives and UNSUBSCRIBEd when their last one leaves. Pub/sub is at-most-once: what is
 * published while the connection is down is lost, so when it comes back the feed tells every
 * listener (`onResubscribed`) to re-read the truth from PostgreSQL. {@link liveQuery} turns all of
 * that into the AsyncIterator a subscription resolver returns: current state first, then changes,
 * never an older version after a newer one, never an unbounded buffer.
 */
import { type Redis, createRedis } from './redis.ts';
import type { Logger } from './logger.ts';
import { activeTraceparent, inSpanOfSync } from './messaging-tracing.ts';
import { retryPolicy, runPolicy } from './resilience.ts';

/** Receives what arrives on the channels it listens to. Must not throw (a throw is logged). */
export interface LiveListener {
  /** A message published on one of the listener's channels. */
  onMessage(channel: string, message: string): void;
  /**
   * The subscriber connection came back after a loss and every channel is subscribed again.
   * Messages published in between are lost: re-read the current state from the source of truth.
   */
  onResubscribed(): void;
}

/** One listener's hold on its channels; disposing it (once is enough, twice is harmless) lets them go. */
export interface LiveSubscription extends Disposable {
  /** The distinct channels held. */
  readonly channels: readonly string[];
  dispose(): void;
}

/** How a {@link LiveFeed} connects. */
export interface LiveFeedOptions {
  /** The Redis server to subscribe on (the one the publishers write to). */
  readonly redisUrl: string;
  readonly log: Logger;
  /** Names the connection (`CLIENT LIST` shows `<name>:live`). */
  readonly name: string;
}

interface ChannelState {
  readonly listeners: Set<LiveListener>;
  /** The SUBSCRIBE in flight or done for this channel; undefined after it failed (the next listener retries). */
  ready: Promise<void> | undefined;
}

/**
 * The process's one Redis subscriber connection, shared by every live subscription and ref-counted
 * per channel. The connection is opened by the first {@link LiveFeed.subscribe}, so processes that
 * never subscribe (scripts, services without subscriptions) open none.
 */
export class LiveFeed implements AsyncDisposable {
  readonly #options: LiveFeedOptions;
  readonly #channels = new Map<string, ChannelState>();
  #redis: Redis | null = null;
  /** The connection dropped since it was last ready: the next `ready` is a recovery. */
  #lost = false;
  #closing: Promise<void> | undefined;

  constructor(options: LiveFeedOptions) {
    this.#options = options;
  }

  /** The channels currently subscribed (or being subscribed), for tests and metrics. */
  get channels(): readonly string[] {
    return [...this.#channels.keys()];
  }

  /** How many listeners hold `channel`. */
  listenerCount(channel: string): number {
    return this.#channels.get(channel)?.listeners.size ?? 0;
  }

  /**
   * Adds `listener` to `channels` and resolves once Redis has confirmed the subscription of every
   * one of them, so anything published after that reaches the listener. Channels that already have
   * listeners cost no SUBSCRIBE. Rejects (holding nothing) when Redis cannot be reached.
   */
  async subscribe(channels: readonly string[], listener: LiveListener): Promise<LiveSubscription> {
    if (this.#closing) throw new Error('the live feed is closed');
    const unique = [...new Set(channels)];
    if (unique.length === 0) throw new TypeError('subscribe needs at least one channel');
    const redis = this.#connection();
    const fresh: string[] = [];
    const waits: Promise<void>[] = [];
    for (const channel of unique) {
      let state = this.#channels.get(channel);
      if (!state) this.#channels.set(channel, (state = { listeners: new Set(), ready: undefined }));
      state.listeners.add(listener);
      if (state.ready) waits.push(state.ready);
      else fresh.push(channel);
    }
    if (fresh.length > 0) {
      const ready: Promise<void> = redis.subscribe(...fresh).then(
        () => undefined,
        (error: unknown) => {
          // Forget the failed attempt, so a later listener subscribes again instead of inheriting it.
          for (const channel of fresh) {
            const state = this.#channels.get(channel);
            if (state?.ready === ready) state.ready = undefined;
          }
          throw error;
        },
      );
      for (const channel of fresh) this.#channels.get(channel)!.ready = ready;
      waits.push(ready);
    }
    let disposed = false;
    const dispose = () => {
      if (disposed) return;
      disposed = true;
      this.#release(unique, listener);
    };
    const subscription: LiveSubscription = { channels: unique, dispose, [Symbol.dispose]: dispose };
    try {
      await Promise.all(waits);
    } catch (error) {
      dispose();
      throw error;
    }
    return subscription;
  }

  /** Closes the subscriber connection; later `subscribe` calls fail. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#channels.clear();
      const redis = this.#redis;
      this.#redis = null;
      if (!redis) return;
      await redis.quit().catch(() => redis.disconnect());
    })();
    return this.#closing;
  }

  /** Same as {@link LiveFeed.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #connection(): Redis {
    if (this.#redis) return this.#redis;
    const { redisUrl, log, name } = this.#options;
    const connectionName = `${name}:live`;
    // A subscriber connection: no key prefix (callers build channel names with channelName()).
    const redis = createRedis({ redisUrl, redisPrefix: '' }, log, connectionName, {
      subscriber: true,
      onError: (error) => log.warn({ err: error.message, redis: connectionName }, 'live subscriber connection error'),
    });
    redis.on('message', (channel: string, message: string) => this.#dispatch(channel, message));
    redis.on('close', () => {
      if (!this.#closing) this.#lost = true;
    });
    redis.on('ready', () => {
      if (!this.#lost) return;
      this.#lost = false;
      void this.#recover(redis);
    });
    this.#redis = redis;
    return redis;
  }

  /**
   * After a reconnection: ioredis resubscribes by itself, but announces `ready` before those
   * SUBSCRIBEs are acknowledged. Subscribing every channel again and awaiting it means a listener
   * that re-reads its state on `onResubscribed` cannot miss a change published after that read.
   */
  async #recover(redis: Redis): Promise<void> {
    const channels = [...this.#channels.keys()];
    if (channels.length === 0) return;
    try {
      await redis.subscribe(...channels);
    } catch (error) {
      // Lost again before it was confirmed: the next `ready` recovers.
      this.#lost = true;
      this.#options.log.warn({ err: (error as Error).message }, 'live resubscription failed; retrying on reconnect');
      return;
    }
    this.#options.log.info({ channels: channels.length }, 'live subscriber connection recovered');
    const listeners = new Set<LiveListener>();
    for (const state of this.#channels.values()) for (const listener of state.listeners) listeners.add(listener);
    for (const listener of listeners) {
      try {
        listener.onResubscribed();
      } catch (error) {
        this.#options.log.error({ err: error }, 'live listener failed on resubscription');
      }
    }
  }

  #dispatch(channel: string, message: string): void {
    const state = this.#channels.get(channel);
    if (!state) return;
    const deliver = () => {
      for (const listener of [...state.listeners]) {
        try {
          listener.onMessage(channel, message);
        } catch (error) {
          this.#options.log.error({ err: error, channel }, 'live listener failed on a message');
        }
      }
    };
    // A message published inside a trace ends that trace here, where its subscribers get it.
    const traceparent = TRACEPARENT_FIELD.exec(message)?.[1];
    if (traceparent)
      inSpanOfSync(
        traceparent,
        'live deliver',
        { 'messaging.system': 'redis', 'messaging.destination.name': channel, 'swiftcart.live.listeners': state.listeners.size },
        deliver,
      );
    else deliver();
  }

  #release(channels: readonly string[], listener: LiveListener): void {
    const unused: string[] = [];
    for (const channel of channels) {
      const state = this.#channels.get(channel);
      if (!state || !state.listeners.delete(listener)) continue;
      if (state.listeners.size === 0) {
        this.#channels.delete(channel);
        unused.push(channel);
      }
    }
    // Not awaited: a subscription's end must not wait for Redis. Commands keep their order on the
    // one connection, so a SUBSCRIBE of the same channel issued after this still wins.
    if (unused.length > 0 && this.#redis && !this.#closing) {
      this.#redis.unsubscribe(...unused).catch((error: Error) => {
        this.#options.log.warn({ err: error.message, channels: unused.length }, 'live unsubscribe failed');
      });
    }
  }
}

const PUBLISH_IF_NEWER = `
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[4])`;

/** A live message's trace context, read without parsing the message (listeners parse it anyway). */
const TRACEPARENT_FIELD = /"traceparent":"([0-9a-f-]{55})"/;

/** How long {@link publishLiveIfNewer} remembers the last version it published of a thing. */
export const LIVE_VERSION_TTL_SECONDS = 86_400;

/**
 * Publishes `message` on `channel` for a thing with a version, once per version: publishes only when `version`
 * is newer than the last one published under `versionKey` (kept for a day), so the same change
 * announced twice (right after its commit, and again by the outbox relay) reaches subscribers once,
 * and an older one arriving late not at all. Returns the subscribers reached (0 when not newer).
 */
export async function publishLiveIfNewer(
  redis: Pick<Redis, 'eval'>,
  log: Logger,
  options: { readonly versionKey: string; readonly version: number; readonly channel: string; readonly message: unknown },
): Promise<number> {
  try {
    // The trace travels inside the message: Redis pub/sub has no headers.
    const traceparent = activeTraceparent();
    const message = traceparent && typeof options.message === 'object' && options.message !== null ? { ...options.message, traceparent } : options.message;
    return Number(
      await redis.eval(PUBLISH_IF_NEWER, 1, options.versionKey, options.version, LIVE_VERSION_TTL_SECONDS, options.channel, JSON.stringify(message)),
    );
  } catch (error) {
    log.warn({ err: (error as Error).message, channel: options.channel }, 'live notification failed');
    return 0;
  }
}

/** What {@link liveQuery} follows and how it tells items apart. */
export interface LiveQueryOptions<T> {
  readonly feed: LiveFeed;
  /** The channels whose messages announce changes of the items. */
  readonly channels: readonly string[];
  /**
   * Reads the current state of every item from the source of truth: at the start (after the
   * channels are subscribed) and after a resubscription. Its first failure is the caller's: it
   * rejects {@link liveQuery}, so a subscribe function can throw it to the client.
   */
  readonly load: () => Promise<readonly T[]>;
  /**
   * The items a message carries (they must be committed figures with their versions), or null when
   * the message only says "something changed" and {@link LiveQueryOptions.load} must be run again.
   * Without it every message means a reload. Throwing drops the message (logged).
   */
  readonly fromMessage?: (channel: string, message: string) => readonly T[] | null;
  /** What identifies an item (a sku, an order id). */
  readonly keyOf: (item: T) => string;
  /** Grows with every change of an item; only higher versions than the last one delivered go out. */
  readonly versionOf: (item: T) => number;
  readonly log: Logger;
}

/** The iterator {@link liveQuery} returns; `return()` (or disposal) ends it and lets the channels go. */
export interface LiveIterator<T> extends AsyncIterableIterator<T>, AsyncDisposable {
  return(): Promise<IteratorResult<T, undefined>>;
}

/** A reload that fails this often in a row ends the iterator with its error. */
const RELOAD_ATTEMPTS = 4;

/**
 * Follows some items live, for a subscription resolver:
 * 1. subscribes to `channels` FIRST, then loads the current state, so no change can fall between;
 * 2. yields the current state of every item (in `load`'s order, even version 0);
 * 3. then yields an item whenever a message (or a reload after a resubscription) brings a version
 *    higher than the last one yielded for its key; older or equal versions are dropped.
 *
 * While the consumer is slow, only the newest pending version per key is kept (coalescing), so
 * memory is bounded by the number of keys, never by the message rate. `return()` (graphql-ws
 * calls it when the client completes or disconnects) unsubscribes at once, even while the iterator
 * waits. Rejects, holding no subscription, when the subscription or the first load fails.
 */
export async function liveQuery<T>(options: LiveQueryOptions<T>): Promise<LiveIterator<T>> {
  const { keyOf, versionOf, log } = options;
  /** The last version yielded per key. */
  const delivered = new Map<string, number>();
  /** Newer versions not yet yielded, newest per key; Map order gives each key its turn. */
  const pending = new Map<string, T>();
  let reloadWanted = false;
  let closed = false;
  let wake: (() => void) | null = null;
  const stop = new AbortController();
  const signal = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  const offer = (item: T) => {
    const key = keyOf(item);
    const version = versionOf(item);
    if (version <= (delivered.get(key) ?? -Infinity)) return;
    const waiting = pending.get(key);
    if (waiting !== undefined && versionOf(waiting) >= version) return;
    pending.set(key, item);
  };

  const listener: LiveListener = {
    onMessage(channel, message) {
      if (closed) return;
      let items: readonly T[] | null = null;
      if (options.fromMessage) {
        try {
          items = options.fromMessage(channel, message);
        } catch (error) {
          log.warn({ err: (error as Error).message, channel }, 'live message dropped');
          return;
        }
      }
      if (items === null) reloadWanted = true;
      else for (const item of items) offer(item);
      signal();
    },
    onResubscribed() {
      if (closed) return;
      reloadWanted = true;
      signal();
    },
  };

  const subscription = await options.feed.subscribe(options.channels, listener);
  let initial: readonly T[];
  try {
    initial = await options.load();
  } catch (error) {
    subscription.dispose();
    throw error;
  }
  // The current state goes first, each item replaced by anything newer that arrived meanwhile.
  const ready: T[] = initial.map((item) => {
    const key = keyOf(item);
    const newer = pending.get(key);
    pending.delete(key);
    return newer !== undefined && versionOf(newer) > versionOf(item) ? newer : item;
  });

  const reloadPolicy = retryPolicy({
    attempts: RELOAD_ATTEMPTS,
    baseMs: 100,
    maxMs: 2_000,
    // An error with a GraphQL code (NOT_FOUND, FORBIDDEN) is an answer, not a hiccup.
    retryable: (error) => !closed && !(error as { extensions?: { code?: unknown } }).extensions?.code,
    onRetry: (error, attempt) => log.warn({ err: (error as Error).message, attempt }, 'live reload failed; retrying'),
  });
  const reload = () => runPolicy(reloadPolicy, () => options.load(), stop.signal);

  const close = (): void => {
    if (closed) return;
    closed = true;
    pending.clear();
    ready.length = 0;
    stop.abort(new Error('the live query ended'));
    subscription.dispose();
    signal();
  };

  const done = (): IteratorResult<T, undefined> => ({ done: true, value: undefined });

  const pull = async (): Promise<IteratorResult<T, undefined>> => {
    for (;;) {
      if (closed) return done();
      const next = ready.shift();
      if (next !== undefined) {
        delivered.set(keyOf(next), versionOf(next));
        return { done: false, value: next };
      }
      if (reloadWanted) {
        reloadWanted = false;
        let items: readonly T[];
        try {
          items = await reload();
        } catch (error) {
          if (closed) return done();
          close();
          throw error;
        }
        for (const item of items) offer(item);
        continue;
      }
      const first = pending.entries().next();
      if (!first.done) {
        const [key, item] = first.value;
        pending.delete(key);
        if (versionOf(item) > (delivered.get(key) ?? -Infinity)) ready.push(item);
        continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  };

  // graphql-js pulls one item at a time, but a second caller must not interleave with a pull.
  let queue: Promise<unknown> = Promise.resolve();
  const iterator: LiveIterator<T> = {
    next() {
      const result = queue.then(pull);
      queue = result.catch(() => undefined);
      return result;
    },
    async return() {
      close();
      return done();
    },
    async throw(error?: unknown) {
      close();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
    async [Symbol.asyncDispose]() {
      close();
    },
  };
  return iterator;
}
