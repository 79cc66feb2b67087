import {
  ErrorCode,
  MAX_REASON_LENGTH,
  SKU_PATTERN,
  apiError,
  badInput,
  channelName,
  checkSku,
  crashPoint,
  enqueueEvents,
  enqueueLive,
  newEvent,
  type EntityManager,
  type Logger,
  type OutboxProjector,
  type Redis,
  type ServiceRuntime,
} from '@swiftcart/platform';
import { emptyStock, toStockRecord, type StockRecord, type StockRow } from './entities.ts';

/** The most units one adjustment may add or remove. */
export const MAX_ADJUSTMENT = 1_000_000;
/** Rows per INSERT statement when seeding. */
const SEED_BATCH_SIZE = 1_000;
/** PostgreSQL's SQLSTATE for an integer overflow. */
const NUMERIC_VALUE_OUT_OF_RANGE = '22003';

const COLUMNS = 'sku, on_hand, reserved, version, updated_at';

/** A stock adjustment as the admin mutation receives it, plus who asked for it. */
export interface AdjustStockInput {
  readonly sku: string;
  readonly delta: number;
  readonly reason: string;
  /** The admin's customer id, recorded in the audit trail. */
  readonly actor: string;
}

/** Validates an adjustment; throws the first problem as BAD_USER_INPUT. */
export function checkAdjustment(input: Pick<AdjustStockInput, 'sku' | 'delta' | 'reason'>): void {
  checkSku(input.sku);
  if (!Number.isInteger(input.delta) || input.delta === 0) {
    throw badInput(`"delta" must be a non-zero whole number of units, got ${input.delta}`, 'delta');
  }
  if (Math.abs(input.delta) > MAX_ADJUSTMENT) {
    throw badInput(`"delta" must be at most ${MAX_ADJUSTMENT.toLocaleString('en')} units either way, got ${input.delta}`, 'delta');
  }
  if (input.reason.trim().length === 0 || input.reason.length > MAX_REASON_LENGTH) {
    throw badInput(`"reason" must be 1 to ${MAX_REASON_LENGTH} characters`, 'reason');
  }
}

/**
 * The stock of `skus` in ONE SQL query, keyed by sku. Skus that have never been stocked are absent;
 * callers decide what that means (the API shows them as all zero).
 */
export async function findStock(em: EntityManager, skus: readonly string[]): Promise<Map<string, StockRecord>> {
  if (skus.length === 0) return new Map();
  // MikroORM expands an array parameter into a list of escaped literals: `in ('a', 'b', ...)`.
  const rows = await em.execute<StockRow[]>(`select ${COLUMNS} from stock where sku in (?)`, [[...new Set(skus)]]);
  return new Map(rows.map((row) => [row.sku, toStockRecord(row)]));
}

/** The stock of each of `skus`, in order, all zero for the ones never stocked. */
export async function loadStock(em: EntityManager, skus: readonly string[]): Promise<StockRecord[]> {
  const found = await findStock(em, skus);
  return skus.map((sku) => found.get(sku) ?? emptyStock(sku));
}

/**
 * Inserts initial stock rows for the seed script, idempotently: a sku that already has stock keeps
 * it. Each inserted row with units gets an audit row (actor `system:seed`), so the audit trail of a
 * sku always sums to its stock on hand. Returns how many stock rows were inserted.
 */
export async function seedStock(em: EntityManager, rows: readonly { sku: string; onHand: number }[]): Promise<number> {
  for (const row of rows) {
    if (!SKU_PATTERN.test(row.sku)) throw new Error(`seedStock: invalid sku "${row.sku}"`);
    if (!Number.isInteger(row.onHand) || row.onHand < 0 || row.onHand > 2_147_483_647) {
      throw new Error(`seedStock: onHand of "${row.sku}" must be a whole number from 0, got ${row.onHand}`);
    }
  }
  return em.transactional(async (tx) => {
    let inserted = 0;
    for (let start = 0; start < rows.length; start += SEED_BATCH_SIZE) {
      const batch = rows.slice(start, start + SEED_BATCH_SIZE).map((r) => ({ sku: r.sku, on_hand: r.onHand }));
      // One statement per batch: the rows travel as one JSON literal, and the audit insert reads
      // only the rows that ON CONFLICT DO NOTHING actually inserted.
      const [result] = await tx.execute<{ inserted: number }[]>(
        `
        with inserted as (
          insert into stock (sku, on_hand)
          select sku, on_hand from jsonb_to_recordset(?::jsonb) as r(sku text, on_hand integer)
          on conflict (sku) do nothing
          returning sku, on_hand
        ), audited as (
          insert into stock_adjustment (sku, delta, reason, actor, on_hand_after)
          select sku, on_hand, 'initial stock', 'system:seed', on_hand from inserted where on_hand > 0
        )
        select count(*)::integer as inserted from inserted`,
        [JSON.stringify(batch)],
      );
      inserted += Number(result.inserted);
    }
    return inserted;
  });
}

/**
 * Writes a committed figure to the Redis hash `stock:<sku>` and publishes it on the sku's channel,
 * both only when it is newer than what the hash holds: two commits whose announcements cross can
 * never leave the older figure behind. Returns 1 when written, 0 when stale.
 */
const ANNOUNCE_IF_NEWER = `
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
if current >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'onHand', ARGV[1], 'reserved', ARGV[2], 'available', ARGV[3], 'version', ARGV[4], 'updatedAt', ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1`;

/** The Redis hash key (before the configured prefix) of a sku's live figure. */
export function stockKey(sku: string): string {
  return `stock:${sku}`;
}

/** The Redis pub/sub channel (with the configured prefix) on which a sku's changes are published. */
export function stockChannel(config: ServiceRuntime['config'], sku: string): string {
  return channelName(config, `stock:${sku}`);
}

/** The live change (platform `enqueueLive`) that carries a sku's new figure to Redis. */
export const STOCK_LEVEL_CHANGED = 'StockLevelChanged';

/**
 * Records changed figures as live changes in the caller's transaction: the outbox relay announces
 * them once committed, even if this process dies before its own announcement (ADR 0016).
 */
export function recordStockChanges(tx: EntityManager, records: readonly StockRecord[]): Promise<void> {
  return enqueueLive(
    tx,
    records.map((record) => ({ type: STOCK_LEVEL_CHANGED, aggregateType: 'Stock', aggregateId: record.sku, payload: record })),
  );
}

/** Inventory's outbox projector: announces every committed figure the relay hands over (version-guarded, so repeats are harmless). */
export function projectStock(ledger: StockLedger): OutboxProjector {
  return async (rows) => {
    for (const row of rows) if (row.type === STOCK_LEVEL_CHANGED) await ledger.announce(row.payload as StockRecord);
  };
}

/**
 * The stock ledger: PostgreSQL is the truth and every change is one conditional statement. A
 * change records its new figure in the outbox (the relay announces it, whatever happens to this
 * process) and this process also announces it right after the commit, the fast path.
 */
export class StockLedger {
  readonly #redis: Redis;
  readonly #config: ServiceRuntime['config'];
  readonly #log: Logger;

  constructor(runtime: Pick<ServiceRuntime, 'redis' | 'config' | 'log'>) {
    this.#redis = runtime.redis;
    this.#config = runtime.config;
    this.#log = runtime.log;
  }

  /**
   * Adds (or removes) units on hand and records the change in `stock_adjustment`, in one
   * transaction. The change is a single conditional statement, so concurrent adjustments serialise
   * on the row lock and each one sees the figures the previous one left: stock on hand never drops
   * below zero or below what is reserved. When it would, INSUFFICIENT_STOCK is thrown and nothing
   * is written.
   */
  async adjust(em: EntityManager, input: AdjustStockInput): Promise<StockRecord> {
    checkAdjustment(input);
    const reason = input.reason.trim();
    let record: StockRecord;
    try {
      record = await em.transactional(async (tx) => {
        const rows =
          input.delta > 0
            ? // A sku never stocked starts at zero: the upsert creates its row, race-free.
              await tx.execute<StockRow[]>(
                `
              insert into stock as s (sku, on_hand) values (?, ?::integer)
              on conflict (sku) do update
                set on_hand = s.on_hand + excluded.on_hand, version = s.version + 1, updated_at = now()
                where s.on_hand + excluded.on_hand >= s.reserved
              returning ${COLUMNS}`,
                [input.sku, input.delta],
              )
            : // Removing from a sku never stocked matches no row and so fails below.
              await tx.execute<StockRow[]>(
                `
              update stock set on_hand = on_hand + (?::integer), version = version + 1, updated_at = now()
              where sku = ? and on_hand + (?::integer) >= reserved and on_hand + (?::integer) >= 0
              returning ${COLUMNS}`,
                [input.delta, input.sku, input.delta, input.delta],
              );
        if (rows.length === 0) throw await insufficient(tx, input.sku, input.delta);
        const changed = toStockRecord(rows[0]);
        await tx.execute(
          'insert into stock_adjustment (sku, delta, reason, actor, on_hand_after) values (?, ?::integer, ?, ?, ?::integer)',
          [input.sku, input.delta, reason, input.actor, changed.onHand],
          'run',
        );
        // Every stock change is an event: reservations have theirs, an adjustment this one.
        await enqueueEvents(tx, [
          newEvent('StockAdjusted', {
            sku: input.sku,
            delta: input.delta,
            reason,
            actor: input.actor,
            onHand: changed.onHand,
            reserved: changed.reserved,
            available: changed.available,
            version: changed.version,
          }),
        ]);
        await recordStockChanges(tx, [changed]);
        return changed;
      });
    } catch (error) {
      if ((error as { code?: string }).code === NUMERIC_VALUE_OUT_OF_RANGE) {
        throw badInput(`Adding ${input.delta} units to "${input.sku}" would exceed the largest stock figure`, 'delta');
      }
      throw error;
    }
    crashPoint(this.#config, 'after-commit');
    await this.announce(record);
    return record;
  }

  /**
   * Publishes a committed figure: call it only after the transaction that produced it has committed.
   * A Redis failure is logged, not thrown: the change is already the truth in PostgreSQL, and
   * failing the request would invite the client to apply it twice.
   */
  async announce(record: StockRecord): Promise<void> {
    try {
      await this.#redis.eval(
        ANNOUNCE_IF_NEWER,
        1,
        stockKey(record.sku),
        record.onHand,
        record.reserved,
        record.available,
        record.version,
        record.updatedAt ?? '',
        stockChannel(this.#config, record.sku),
        JSON.stringify(record),
      );
    } catch (error) {
      this.#log.warn({ err: (error as Error).message, sku: record.sku, version: record.version }, 'stock announcement failed');
    }
  }
}

/** The INSUFFICIENT_STOCK error for a refused adjustment, with the figures that refused it. */
async function insufficient(tx: EntityManager, sku: string, delta: number) {
  const [row] = await tx.execute<StockRow[]>(`select ${COLUMNS} from stock where sku = ?`, [sku]);
  const current = row ? toStockRecord(row) : emptyStock(sku);
  return apiError(
    ErrorCode.InsufficientStock,
    `Insufficient stock for "${sku}": ${current.onHand} on hand, ${current.reserved} reserved, requested ${delta}; ` +
      `at most ${current.available} can be removed`,
    { sku, onHand: current.onHand, reserved: current.reserved, available: current.available, requested: delta },
  );
}
