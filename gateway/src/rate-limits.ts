/**
 * The gateway's rate limits and caps, shared by every replica through Redis (docs/security.md):
 *
 * - operations (HTTP, and queries or mutations over graphql-ws) per token subject, or per client
 *   address for anonymous calls, each with its own allowance per window;
 * - new WebSocket connections per client address (counted at the upgrade, before any token is known);
 * - subscriptions started per subject or address;
 * - open WebSockets per subject or address ({@link EdgeRateLimits.acquireSocket}), as leases in Redis
 *   that the replica holding the socket keeps alive, so a crashed replica's sockets stop counting
 *   within {@link SOCKET_LEASE_MS};
 * - subscriptions per socket (counted by the live server itself: one socket lives on one replica).
 *
 * When Redis cannot be reached, every count falls back to this replica's memory with the same
 * allowance ("insurance"): the limits still hold per replica, and the platform stays up.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '@swiftcart/platform/config';
import { commaList, integer, invalid, parseSettings, setting, z } from '@swiftcart/platform/settings';
import type { Logger } from '@swiftcart/platform/logger';
import { type Redis, createRedis } from '@swiftcart/platform/redis';
import { waitAtMost } from '@swiftcart/platform/resilience';

/** What the gateway allows one client; see {@link rateLimitSettings} for the variables and defaults. */
export interface RateLimitSettings {
  /** The window the `*PerWindow` counts refer to (`RATE_LIMIT_WINDOW_SECONDS`). */
  readonly windowSeconds: number;
  /** Operations per window for one token subject (`RATE_LIMIT_HTTP_PER_WINDOW`). */
  readonly operationsPerWindow: number;
  /** Operations per window for one client address without a token (`RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW`). */
  readonly anonymousOperationsPerWindow: number;
  /** WebSocket upgrades per window from one client address (`RATE_LIMIT_SOCKETS_PER_WINDOW`). */
  readonly socketsPerWindow: number;
  /** Subscriptions started per window by one subject or address (`RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW`). */
  readonly subscriptionsPerWindow: number;
  /** Subscriptions open at once on one socket (`MAX_SUBSCRIPTIONS_PER_SOCKET`). */
  readonly maxSubscriptionsPerSocket: number;
  /** Sockets open at once for one subject, or for one address without a token (`MAX_SOCKETS_PER_CLIENT`). */
  readonly maxSocketsPerClient: number;
}

/**
 * Defaults of {@link RateLimitSettings}. A person in the storefront sends a few operations per
 * page and keeps one socket with a handful of subscriptions, far below each; a script that sends
 * hundreds of anonymous requests a second is refused after 120 (docs/security.md).
 */
export const DEFAULT_RATE_LIMITS: RateLimitSettings = {
  windowSeconds: 60,
  operationsPerWindow: 600,
  anonymousOperationsPerWindow: 120,
  socketsPerWindow: 60,
  subscriptionsPerWindow: 300,
  maxSubscriptionsPerSocket: 100,
  maxSocketsPerClient: 20,
};

/** Upper bound of every count setting: a benchmark may raise them out of the way. */
const MAX_SETTING = 100_000_000;

/** The variables of {@link RateLimitSettings}, declared here and part of the gateway's settings (settings.ts). */
export const edgeRateLimitSettings = z.object({
  RATE_LIMIT_WINDOW_SECONDS: integer({ default: DEFAULT_RATE_LIMITS.windowSeconds, min: 1, max: 86_400, unit: 's' }).describe(
    'the window of the `RATE_LIMIT_*_PER_WINDOW` counts',
  ),
  RATE_LIMIT_HTTP_PER_WINDOW: integer({ default: DEFAULT_RATE_LIMITS.operationsPerWindow, min: 1, max: MAX_SETTING }).describe(
    'GraphQL operations (HTTP, and queries or mutations over graphql-ws) per token subject',
  ),
  RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: integer({ default: DEFAULT_RATE_LIMITS.anonymousOperationsPerWindow, min: 1, max: MAX_SETTING }).describe(
    'GraphQL operations per client address without a token',
  ),
  RATE_LIMIT_SOCKETS_PER_WINDOW: integer({ default: DEFAULT_RATE_LIMITS.socketsPerWindow, min: 1, max: MAX_SETTING }).describe(
    'WebSocket upgrades per client address',
  ),
  RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW: integer({ default: DEFAULT_RATE_LIMITS.subscriptionsPerWindow, min: 1, max: MAX_SETTING }).describe(
    'subscriptions started per token subject, or address without a token',
  ),
  MAX_SUBSCRIPTIONS_PER_SOCKET: integer({ default: DEFAULT_RATE_LIMITS.maxSubscriptionsPerSocket, min: 1, max: MAX_SETTING }).describe(
    'subscriptions open at once on one socket',
  ),
  MAX_SOCKETS_PER_CLIENT: integer({ default: DEFAULT_RATE_LIMITS.maxSocketsPerClient, min: 1, max: MAX_SETTING }).describe(
    'sockets open at once per token subject, or address without a token, across gateway replicas',
  ),
});

/** Reads {@link RateLimitSettings}; `settings` defaults to those parsed from `config.vars`. */
export function rateLimitSettings(
  config: Pick<Config, 'vars'>,
  settings: z.output<typeof edgeRateLimitSettings> = parseSettings(edgeRateLimitSettings, config.vars),
): RateLimitSettings {
  return {
    windowSeconds: settings.RATE_LIMIT_WINDOW_SECONDS,
    operationsPerWindow: settings.RATE_LIMIT_HTTP_PER_WINDOW,
    anonymousOperationsPerWindow: settings.RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW,
    socketsPerWindow: settings.RATE_LIMIT_SOCKETS_PER_WINDOW,
    subscriptionsPerWindow: settings.RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW,
    maxSubscriptionsPerSocket: settings.MAX_SUBSCRIPTIONS_PER_SOCKET,
    maxSocketsPerClient: settings.MAX_SOCKETS_PER_CLIENT,
  };
}

// ---------------------------------------------------------------------------------------------
// Who the client is
// ---------------------------------------------------------------------------------------------

/**
 * `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges (`10.0.0.0/8`, `::1`) of the proxies
 * whose `X-Forwarded-For` names the client. Unset: none, and the socket's peer is the client.
 */
export const trustedProxySettings = z.object({
  TRUSTED_PROXIES: setting(
    (raw): BlockList | null => {
      const entries = commaList(raw);
      if (entries.length === 0) return null;
      const list = new BlockList();
      for (const entry of entries) {
        const [address, bits, extra] = entry.split('/');
        const family = isIP(address);
        const prefix = bits === undefined ? null : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
        if (family === 0 || extra !== undefined || Number.isNaN(prefix) || (prefix !== null && prefix > (family === 4 ? 32 : 128))) {
          invalid(`entries must be IP addresses or CIDR ranges such as 10.0.0.0/8, got "${entry}"`);
        }
        const type = family === 4 ? 'ipv4' : 'ipv6';
        if (prefix === null) list.addAddress(address, type);
        else list.addSubnet(address, prefix, type);
      }
      return list;
    },
    { default: 'none', accepts: 'comma-separated addresses or CIDR ranges' },
  ).describe("proxies whose `X-Forwarded-For` names the client; without them, the socket's peer is the client"),
});

/** Reads `TRUSTED_PROXIES` ({@link trustedProxySettings}); `settings` defaults to those parsed from `config.vars`. */
export function trustedProxies(
  config: Pick<Config, 'vars'>,
  settings: z.output<typeof trustedProxySettings> = parseSettings(trustedProxySettings, config.vars),
): BlockList | null {
  return settings.TRUSTED_PROXIES;
}

/** `::ffff:1.2.3.4` is the IPv4 client 1.2.3.4; zone indexes (`%eth0`) do not make another client. */
function normalizeAddress(address: string): string {
  const plain = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain);
  return mapped ? mapped[1] : plain.toLowerCase();
}

function isTrusted(list: BlockList, address: string): boolean {
  const family = isIP(address);
  return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * The client's address: the socket's peer, or, when that peer is a trusted proxy, the nearest
 * address in `X-Forwarded-For` that is not one (a client cannot forge the hops a trusted proxy
 * appended after its own).
 */
export function clientAddress(req: IncomingMessage, trusted: BlockList | null): string {
  let address = normalizeAddress(req.socket.remoteAddress ?? 'unknown');
  if (!trusted || !isTrusted(trusted, address)) return address;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((h) => normalizeAddress(h.trim()))
    .filter((h) => isIP(h) !== 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    address = hops[i];
    if (!isTrusted(trusted, address)) break;
  }
  return address;
}

/**
 * The first 64 bits of an IPv6 address: one subscriber usually holds a whole /64, so counting
 * single IPv6 addresses would give one client 2^64 allowances.
 */
function ipv6Prefix64(address: string): string {
  const [head, tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  // An embedded IPv4 tail takes two groups; it never reaches into the first 64 bits.
  const width = right.length + (right.at(-1)?.includes('.') ? 1 : 0);
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - width)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

/** Whom a count belongs to: a token subject, or an address for anonymous calls. */
export interface ClientKey {
  /** `sub:<subject>` or `addr:<address or IPv6 /64>`: the Redis key suffix. */
  readonly key: string;
  readonly anonymous: boolean;
}

/** The key of a token subject. */
export function subjectClient(subject: string): ClientKey {
  return { key: `sub:${subject}`, anonymous: false };
}

/** The key of an anonymous client at `address` (IPv6 counted per /64). */
export function addressClient(address: string): ClientKey {
  return { key: `addr:${isIP(address) === 6 ? ipv6Prefix64(address) : address}`, anonymous: true };
}

// ---------------------------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------------------------

/** Why something was refused, for the client: HTTP 429 / graphql-ws RATE_LIMITED. */
export interface Refusal {
  readonly message: string;
  /** Whole seconds, at least 1. */
  readonly retryAfterSeconds: number;
  /** The setting that refused it, e.g. `RATE_LIMIT_HTTP_PER_WINDOW`. */
  readonly limit: string;
}

/**
 * The retry hint for a cap on things open at once (sockets, subscriptions): nothing frees by
 * itself there, the client must close one first; this many seconds keep a retry loop slow.
 */
export const CAP_RETRY_AFTER_SECONDS = 10;

/** How long a socket lease lives in Redis without its replica refreshing it. */
export const SOCKET_LEASE_MS = 60_000;
/** How often a replica refreshes the leases of its open sockets. */
const SOCKET_LEASE_REFRESH_MS = 20_000;
/** How long a Redis command may take before the replica counts in memory instead. */
const REDIS_COMMAND_TIMEOUT_MS = 500;
/** At most one "Redis unreachable" warning per this interval, however many requests fail over. */
const REDIS_WARNING_INTERVAL_MS = 60_000;

/**
 * Acquires a socket lease: drops expired leases, refuses at the cap, else adds this one. Redis's
 * own clock (`TIME`) dates leases, so replicas with drifting clocks agree on what has expired.
 * KEYS[1] the client's lease set; ARGV: lease ms, member, cap. Returns 1 when acquired.
 */
const ACQUIRE_SOCKET_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

/** Extends (or, after a Redis outage, restores) leases. KEYS[1] lease set; ARGV: lease ms, members... */
const REFRESH_SOCKETS_LUA = `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], expires, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`;

interface LeaseCommands {
  edgeAcquireSocket(key: string, leaseMs: number, member: string, cap: number): Promise<number>;
  edgeRefreshSockets(key: string, leaseMs: number, ...members: string[]): Promise<number>;
}

/** One open socket counted for a client; release it when the socket closes (idempotent). */
export interface SocketLease {
  readonly client: ClientKey;
  release(): void;
}

/** The kinds of things counted per window. */
export type RateLimitKind = 'operation' | 'socket' | 'subscription';

interface Limiter {
  readonly limiter: RateLimiterRedis;
  readonly setting: string;
  readonly points: number;
  readonly what: string;
}

/** A Redis-backed limiter with an in-memory twin for when Redis is away. */
function limiter(redis: Redis, name: string, points: number, windowSeconds: number): RateLimiterRedis {
  return new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `rate:${name}`,
    points,
    duration: windowSeconds,
    // Once a client is over, this replica answers from memory until the window ends: a flood
    // costs no Redis round trips.
    inMemoryBlockOnConsumed: points + 1,
    rejectIfRedisNotReady: true,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: `rate:${name}`, points, duration: windowSeconds }),
  });
}

/** The shared counts of one gateway replica. Close it with the gateway. */
export class EdgeRateLimits implements AsyncDisposable {
  readonly settings: RateLimitSettings;
  readonly #redis: Redis & LeaseCommands;
  readonly #log: Logger;
  readonly #limiters: { operation: Limiter; anonymousOperation: Limiter; socket: Limiter; subscription: Limiter };
  /** This replica's open sockets by lease set, for refreshing and for counting while Redis is away. */
  readonly #leases = new Map<string, Set<string>>();
  readonly #replica = randomBytes(6).toString('hex');
  #sequence = 0;
  #lastWarning = 0;
  readonly #refresh: NodeJS.Timeout;

  private constructor(redis: Redis & LeaseCommands, log: Logger, settings: RateLimitSettings) {
    this.#redis = redis;
    this.#log = log;
    this.settings = settings;
    const w = settings.windowSeconds;
    const make = (name: string, setting: string, points: number, what: string): Limiter => ({
      limiter: limiter(redis, name, points, w),
      setting,
      points,
      what,
    });
    this.#limiters = {
      operation: make('operation', 'RATE_LIMIT_HTTP_PER_WINDOW', settings.operationsPerWindow, 'operations for this token subject'),
      anonymousOperation: make(
        'operation-anonymous',
        'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW',
        settings.anonymousOperationsPerWindow,
        'operations without a token from this address',
      ),
      socket: make('socket', 'RATE_LIMIT_SOCKETS_PER_WINDOW', settings.socketsPerWindow, 'new WebSocket connections from this address'),
      subscription: make('subscription', 'RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW', settings.subscriptionsPerWindow, 'subscriptions started by this client'),
    };
    this.#refresh = setInterval(() => this.#refreshLeases(), SOCKET_LEASE_REFRESH_MS).unref();
  }

  /**
   * Connects to Redis (`config.redisUrl`, keys under `config.redisPrefix`) and waits up to
   * `config.readinessTimeoutMs` for it. A Redis that does not answer does not stop the gateway: it
   * counts in memory and logs a warning until Redis is back.
   */
  static async start(
    config: Pick<Config, 'redisUrl' | 'redisPrefix' | 'readinessTimeoutMs'>,
    log: Logger,
    settings: RateLimitSettings,
  ): Promise<EdgeRateLimits> {
    const redis = createRedis(config, log, 'gateway-rate-limits', {
      // Fail over to memory at once rather than queue requests behind a Redis that is away.
      failFastMs: REDIS_COMMAND_TIMEOUT_MS,
      // Requests arriving in the same tick share one write to Redis.
      autoPipelining: true,
      // Connection errors are warned of at most once in a while (#warn), like failed counts.
      onError: (error) => limits.#warn(error),
    });
    redis.defineCommand('edgeAcquireSocket', { numberOfKeys: 1, lua: ACQUIRE_SOCKET_LUA });
    redis.defineCommand('edgeRefreshSockets', { numberOfKeys: 1, lua: REFRESH_SOCKETS_LUA });
    const limits = new EdgeRateLimits(redis as Redis & LeaseCommands, log, settings);
    if (redis.status !== 'ready') {
      const ready = await waitAtMost(new Promise((resolve) => redis.once('ready', resolve)), config.readinessTimeoutMs);
      if (!ready) log.warn({ redis: config.redisUrl }, 'Redis does not answer: rate limits count per gateway replica until it does');
    }
    return limits;
  }

  /**
   * Counts one `kind` for `client`: null when allowed, else why not. Operations of anonymous
   * clients have their own allowance; sockets are counted per address only.
   */
  async consume(kind: RateLimitKind, client: ClientKey): Promise<Refusal | null> {
    const entry = kind === 'operation' && client.anonymous ? this.#limiters.anonymousOperation : this.#limiters[kind];
    try {
      await entry.limiter.consume(client.key);
      return null;
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) {
        // Both Redis and the in-memory insurance failed: nothing sensible to refuse with.
        this.#warn(error as Error);
        return null;
      }
      const retryAfterSeconds = Math.max(1, Math.ceil(error.msBeforeNext / 1000));
      return {
        message: `Rate limit exceeded: at most ${entry.points} ${entry.what} per ${this.settings.windowSeconds} s; retry in ${retryAfterSeconds} s`,
        retryAfterSeconds,
        limit: entry.setting,
      };
    }
  }

  /**
   * Counts one open socket for `client` against {@link RateLimitSettings.maxSocketsPerClient},
   * across replicas: a lease, or the refusal when the client has that many open already.
   */
  async acquireSocket(client: ClientKey): Promise<SocketLease | Refusal> {
    const set = `sockets:${client.key}`;
    const member = `${this.#replica}:${++this.#sequence}`;
    const cap = this.settings.maxSocketsPerClient;
    let acquired: boolean;
    try {
      acquired = (await this.#redis.edgeAcquireSocket(set, SOCKET_LEASE_MS, member, cap)) === 1;
    } catch (error) {
      this.#warn(error as Error);
      acquired = (this.#leases.get(set)?.size ?? 0) < cap;
    }
    if (!acquired) {
      const who = client.anonymous ? 'this address without a token' : 'this token subject';
      return {
        message: `Too many open WebSocket connections: at most ${cap} for ${who}`,
        retryAfterSeconds: CAP_RETRY_AFTER_SECONDS,
        limit: 'MAX_SOCKETS_PER_CLIENT',
      };
    }
    let members = this.#leases.get(set);
    if (!members) this.#leases.set(set, (members = new Set()));
    members.add(member);
    let released = false;
    return {
      client,
      release: () => {
        if (released) return;
        released = true;
        members.delete(member);
        if (members.size === 0 && this.#leases.get(set) === members) this.#leases.delete(set);
        this.#redis.zrem(set, member).catch((error: Error) => this.#warn(error));
      },
    };
  }

  #refreshLeases(): void {
    for (const [set, members] of this.#leases) {
      this.#redis.edgeRefreshSockets(set, SOCKET_LEASE_MS, ...members).catch((error: Error) => this.#warn(error));
    }
  }

  #warn(error: Error): void {
    const now = Date.now();
    if (now - this.#lastWarning < REDIS_WARNING_INTERVAL_MS) return;
    this.#lastWarning = now;
    this.#log.warn({ err: error.message }, 'rate limits cannot reach Redis: counting per gateway replica meanwhile');
  }

  /** Stops refreshing leases and disconnects once the releases sent so far are done; leases still held expire in Redis by themselves. */
  async close(): Promise<void> {
    clearInterval(this.#refresh);
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
