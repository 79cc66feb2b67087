/**
 * Carts in Redis (ADR 0021). A customer's cart is a few keys under one hash tag, so they stay on one
 * node of a Redis Cluster and one script may touch them all:
 * - `cart:{<customer>}:lines`, a hash from sku to the line (JSON: quantity, price when added, when added);
 * - `cart:{<customer>}:meta`, a hash with the cart's `version` and `updatedAt` (epoch milliseconds);
 * - `cart:{<customer>}:checkout:<key>`, one per checkout key: the request being placed, then the
 *   order it placed, each kept for the cart's TTL from when it was written;
 * - `cart:{<customer>}:lock`, held by the one checkout of the cart under way.
 *
 * Every change is one Lua script: it checks the limits, writes, raises the version, renews the TTL
 * of the cart's keys and publishes the new version on the cart's channel, atomically, so two tabs
 * that add at once both land, and a subscriber never misses a change it could have seen. The
 * version never goes backwards, even across an expired cart: it is at least the Redis clock's
 * seconds since {@link VERSION_EPOCH_SECONDS}, which fits GraphQL's 32-bit Int for 68 years.
 */
import { channelName, type Config, type Money, type Redis } from '@swiftcart/platform';

/** One line as the store keeps it. */
export interface CartLineRecord {
  readonly sku: string;
  readonly quantity: number;
  /** The price when the line was added, or when units were last added to it. */
  readonly priceWhenAdded: Money;
  readonly addedAt: Date;
}

/** A cart as the store keeps it. */
export interface CartRecord {
  readonly customerId: string;
  /** In the order the lines were first added. */
  readonly lines: readonly CartLineRecord[];
  /** 0 for a cart never changed (or forgotten after its TTL). */
  readonly version: number;
  readonly updatedAt: Date | null;
}

/** Why a change was refused; the resolvers turn it into a GraphQL error. */
export type CartRefusal =
  | { readonly refused: 'LINE_LIMIT'; readonly limit: number }
  | { readonly refused: 'QUANTITY_LIMIT'; readonly limit: number; readonly quantity: number }
  | { readonly refused: 'NOT_IN_CART' };

/** What a change did: the cart's version after it (unchanged when nothing changed), or a refusal. */
export type CartChange = { readonly refused?: undefined; readonly version: number } | CartRefusal;

/** A line of an order a checkout placed: what to take out of the cart. */
export interface OrderedLine {
  readonly sku: string;
  readonly quantity: number;
}

/** What a checkout key has recorded: the request it is placing, or the order it placed. */
export type CheckoutRecord<R> = { readonly placing: R } | { readonly placed: string };

/** 2026-01-01T00:00:00Z: versions count from here, so that they fit a 32-bit Int until 2094. */
export const VERSION_EPOCH_SECONDS = 1_767_225_600;

/** What the store's scripts share: the clock, the bump of the version and the TTL and publish. */
const PRELUDE = `
local lines, meta = KEYS[1], KEYS[2]
local ttl, channel = tonumber(ARGV[1]), ARGV[2]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function bump()
  local floor = tonumber(clock[1]) - ${VERSION_EPOCH_SECONDS}
  local version = math.max(tonumber(redis.call('HGET', meta, 'version') or '0') + 1, floor)
  redis.call('HSET', meta, 'version', version, 'updatedAt', now)
  redis.call('PEXPIRE', lines, ttl)
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PUBLISH', channel, cjson.encode({ version = version }))
  return version
end
local function current()
  return tonumber(redis.call('HGET', meta, 'version') or '0')
end
`;

/** ARGV from 3: sku, quantity, maxQuantity, maxLines, price amount, currency. */
const ADD = `${PRELUDE}
local sku, quantity, maxQuantity, maxLines = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local raw = redis.call('HGET', lines, sku)
local line
if raw then
  line = cjson.decode(raw)
  if line.q + quantity > maxQuantity then return { 'QUANTITY_LIMIT', maxQuantity, line.q } end
  line.q = line.q + quantity
else
  if redis.call('HLEN', lines) >= maxLines then return { 'LINE_LIMIT', maxLines } end
  if quantity > maxQuantity then return { 'QUANTITY_LIMIT', maxQuantity, 0 } end
  line = { q = quantity, t = now, n = redis.call('HINCRBY', meta, 'seq', 1) }
end
line.a, line.c = tonumber(ARGV[7]), ARGV[8]
redis.call('HSET', lines, sku, cjson.encode(line))
return { 'OK', bump() }`;

/** ARGV from 3: sku, quantity (0 removes), maxQuantity. */
const SET = `${PRELUDE}
local sku, quantity, maxQuantity = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local raw = redis.call('HGET', lines, sku)
if not raw then return { 'NOT_IN_CART' } end
if quantity == 0 then
  redis.call('HDEL', lines, sku)
  return { 'OK', bump() }
end
if quantity > maxQuantity then return { 'QUANTITY_LIMIT', maxQuantity, cjson.decode(raw).q } end
local line = cjson.decode(raw)
if line.q == quantity then return { 'OK', current() } end
line.q = quantity
redis.call('HSET', lines, sku, cjson.encode(line))
return { 'OK', bump() }`;

/** ARGV from 3: sku. */
const REMOVE = `${PRELUDE}
if redis.call('HDEL', lines, ARGV[3]) == 0 then return { 'OK', current() } end
return { 'OK', bump() }`;

const CLEAR = `${PRELUDE}
if redis.call('DEL', lines) == 0 then return { 'OK', current() } end
return { 'OK', bump() }`;

/**
 * KEYS[3] is the checkout key's record; ARGV from 3: order id, the ordered lines as JSON. Records the
 * order first: a second run for the key (two tabs, a retry) takes nothing out again and answers the
 * order recorded.
 */
const TAKE_ORDERED = `${PRELUDE}
local recorded = redis.call('GET', KEYS[3])
if recorded and string.sub(recorded, 1, 7) == 'placed:' then return { 'OK', current(), string.sub(recorded, 8) } end
redis.call('SET', KEYS[3], 'placed:' .. ARGV[3], 'PX', ttl)
for _, ordered in ipairs(cjson.decode(ARGV[4])) do
  local raw = redis.call('HGET', lines, ordered.sku)
  if raw then
    local line = cjson.decode(raw)
    if line.q <= ordered.quantity then
      redis.call('HDEL', lines, ordered.sku)
    else
      line.q = line.q - ordered.quantity
      redis.call('HSET', lines, ordered.sku, cjson.encode(line))
    end
  end
end
return { 'OK', bump(), ARGV[3] }`;

/** KEYS[1] the record; ARGV: the request as JSON, the TTL. Records the request unless the key has a record already, which it answers. */
const BEGIN_CHECKOUT = `
local recorded = redis.call('GET', KEYS[1])
if recorded then return recorded end
redis.call('SET', KEYS[1], 'placing:' .. ARGV[1], 'PX', ARGV[2])
return false`;

/** KEYS[1] a record or the lock; ARGV[1] its value. Deletes it only while it still holds that value. */
const DELETE_IF = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** A stored line's JSON. */
interface StoredLine {
  /** quantity */
  readonly q: number;
  /** price amount when added */
  readonly a: number;
  /** currency */
  readonly c: string;
  /** when added, epoch ms */
  readonly t: number;
  /** the order it was first added in */
  readonly n: number;
}

type ScriptReply = [status: string, ...rest: (string | number)[]];

/** The cart store of one service process. */
export class CartStore {
  readonly #redis: Redis;
  readonly #config: Pick<Config, 'redisPrefix'>;
  readonly #ttlMs: number;

  constructor(options: { readonly redis: Redis; readonly config: Pick<Config, 'redisPrefix'>; readonly ttlMs: number }) {
    this.#redis = options.redis;
    this.#config = options.config;
    this.#ttlMs = options.ttlMs;
  }

  /** The Redis channel (with the configured prefix) on which a customer's cart announces its versions. */
  channel(customerId: string): string {
    return channelName(this.#config, `cart:{${customerId}}`);
  }

  #keys(customerId: string): [string, string] {
    const tag = `cart:{${customerId}}`;
    return [`${tag}:lines`, `${tag}:meta`];
  }

  #checkoutKey(customerId: string, key: string): string {
    return `cart:{${customerId}}:checkout:${key}`;
  }

  #lockKey(customerId: string): string {
    return `cart:{${customerId}}:lock`;
  }

  async #run(script: string, customerId: string, args: readonly (string | number)[], extraKeys: readonly string[] = []): Promise<ScriptReply> {
    const keys = [...this.#keys(customerId), ...extraKeys];
    return (await this.#redis.eval(script, keys.length, ...keys, this.#ttlMs, this.channel(customerId), ...args)) as ScriptReply;
  }

  static #change(reply: ScriptReply): CartChange {
    const [status, a, b] = reply;
    if (status === 'OK') return { version: Number(a) };
    if (status === 'LINE_LIMIT') return { refused: 'LINE_LIMIT', limit: Number(a) };
    if (status === 'QUANTITY_LIMIT') return { refused: 'QUANTITY_LIMIT', limit: Number(a), quantity: Number(b) };
    if (status === 'NOT_IN_CART') return { refused: 'NOT_IN_CART' };
    throw new Error(`unexpected cart script reply ${status}`);
  }

  /** The customer's cart: one round trip, a consistent snapshot of its lines and version. */
  async read(customerId: string): Promise<CartRecord> {
    const [lines, meta] = this.#keys(customerId);
    const results = await this.#redis.multi().hgetall(lines).hmget(meta, 'version', 'updatedAt').exec();
    if (!results) throw new Error('the cart read was aborted');
    for (const [error] of results) if (error) throw error;
    const stored = results[0][1] as Record<string, string>;
    const [version, updatedAt] = results[1][1] as (string | null)[];
    const parsed = Object.entries(stored).map(([sku, raw]) => ({ sku, line: JSON.parse(raw) as StoredLine }));
    parsed.sort((x, y) => x.line.n - y.line.n);
    return {
      customerId,
      lines: parsed.map(({ sku, line }) => ({ sku, quantity: line.q, priceWhenAdded: { amount: line.a, currency: line.c }, addedAt: new Date(line.t) })),
      version: Number(version ?? 0),
      updatedAt: updatedAt ? new Date(Number(updatedAt)) : null,
    };
  }

  /** Adds `quantity` units of `sku` at `price` (the line's price when added is then `price`). */
  async add(customerId: string, line: { sku: string; quantity: number; price: Money }, limits: { maxQuantity: number; maxLines: number }): Promise<CartChange> {
    const { sku, quantity, price } = line;
    return CartStore.#change(await this.#run(ADD, customerId, [sku, quantity, limits.maxQuantity, limits.maxLines, price.amount, price.currency]));
  }

  /** Sets a line's quantity; 0 removes it. */
  async set(customerId: string, sku: string, quantity: number, maxQuantity: number): Promise<CartChange> {
    return CartStore.#change(await this.#run(SET, customerId, [sku, quantity, maxQuantity]));
  }

  /** Removes a line; a sku not in the cart changes nothing. */
  async remove(customerId: string, sku: string): Promise<CartChange> {
    return CartStore.#change(await this.#run(REMOVE, customerId, [sku]));
  }

  /** Empties the cart. */
  async clear(customerId: string): Promise<CartChange> {
    return CartStore.#change(await this.#run(CLEAR, customerId, []));
  }

  static #record<R>(raw: string | null): CheckoutRecord<R> | null {
    if (raw === null) return null;
    if (raw.startsWith('placed:')) return { placed: raw.slice('placed:'.length) };
    return { placing: JSON.parse(raw.slice('placing:'.length)) as R };
  }

  /** What checkout `key` has recorded, if anything. */
  async checkoutRecord<R>(customerId: string, key: string): Promise<CheckoutRecord<R> | null> {
    return CartStore.#record<R>(await this.#redis.get(this.#checkoutKey(customerId, key)));
  }

  /**
   * Records that checkout `key` is placing `request`, before it goes to the order service, so that
   * a retry sends the same request whatever the cart has become meanwhile. Answers the key's record
   * instead when it has one already (nothing is written then), or null once `request` is recorded.
   */
  async beginCheckout<R>(customerId: string, key: string, request: R): Promise<CheckoutRecord<R> | null> {
    const raw = (await this.#redis.eval(BEGIN_CHECKOUT, 1, this.#checkoutKey(customerId, key), JSON.stringify(request), this.#ttlMs)) as string | null;
    return CartStore.#record<R>(raw);
  }

  /** Forgets that checkout `key` is placing `request` (the order service refused it), unless the record has changed since. */
  async abandonCheckout<R>(customerId: string, key: string, request: R): Promise<void> {
    await this.#redis.eval(DELETE_IF, 1, this.#checkoutKey(customerId, key), `placing:${JSON.stringify(request)}`);
  }

  /**
   * Records that checkout `key` placed `orderId` and takes its lines out of the cart, once per key:
   * returns the order recorded for the key (the first one, should two runs race).
   */
  async takeOrdered(customerId: string, key: string, orderId: string, lines: readonly OrderedLine[]): Promise<string> {
    const reply = await this.#run(TAKE_ORDERED, customerId, [orderId, JSON.stringify(lines)], [this.#checkoutKey(customerId, key)]);
    return String(reply[2]);
  }

  /** Takes the cart's checkout lock for `ms` under `token`, unless another holds it: whether it was taken. */
  async lock(customerId: string, token: string, ms: number): Promise<boolean> {
    return (await this.#redis.set(this.#lockKey(customerId), token, 'PX', ms, 'NX')) === 'OK';
  }

  /** Lets the checkout lock go, if `token` still holds it. */
  async unlock(customerId: string, token: string): Promise<void> {
    await this.#redis.eval(DELETE_IF, 1, this.#lockKey(customerId), token);
  }
}
