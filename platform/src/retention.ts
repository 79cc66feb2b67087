/**
 * Retention of the messaging tables: published outbox rows and inbox rows are deleted once they
 * are old enough, so neither table grows without end. Scheduled by `startService` in every process
 * that runs the relay and the consumers.
 */
import type { Config } from './config.ts';
import type { Database, EntityManager } from './database.ts';
import type { Logger } from './logger.ts';
import { sleep } from './resilience.ts';

/** Rows deleted per statement: short transactions, so a prune never holds the relay or a consumer back. */
const PRUNE_BATCH = 5_000;

/**
 * Deletes the rows of `table` whose `timeColumn` is more than `retentionMs` before `now`, in
 * batches of {@link PRUNE_BATCH} (by `ctid`, so any table works); returns how many were deleted.
 * `table` and `timeColumn` are this module's constants, never input.
 */
async function pruneOlderThan(em: EntityManager, table: string, timeColumn: string, retentionMs: number, now: Date): Promise<number> {
  const sql = `
    with deleted as (
      delete from ${table} where ctid in (
        select ctid from ${table}
        where ${timeColumn} < ?::timestamptz - (? * interval '1 millisecond')
        limit ?)
      returning 1
    )
    select count(*)::integer as deleted from deleted`;
  let total = 0;
  for (;;) {
    const [row] = await em.execute<{ deleted: number }[]>(sql, [now.toISOString(), retentionMs, PRUNE_BATCH]);
    total += Number(row.deleted);
    if (Number(row.deleted) < PRUNE_BATCH) return total;
  }
}

/**
 * Deletes outbox rows marked done (published, or projected live changes) more than `retentionMs`
 * before `now`; rows not yet done (`published_at` null) are never touched. Returns how many were deleted.
 */
export function pruneOutbox(em: EntityManager, retentionMs: number, now: Date = new Date()): Promise<number> {
  return pruneOlderThan(em, 'outbox', 'published_at', retentionMs, now);
}

/**
 * Deletes inbox rows processed more than `retentionMs` before `now`. The retention must be longer
 * than the topics' (`KAFKA_RETENTION_MS`): a redelivery older than the inbox's memory would be
 * applied again. Returns how many were deleted.
 */
export function pruneInbox(em: EntityManager, retentionMs: number, now: Date = new Date()): Promise<number> {
  return pruneOlderThan(em, 'inbox', 'processed_at', retentionMs, now);
}

/** Deletes delivery counts (platform/src/inbox.ts) older than `retentionMs`: kept as long as the inbox. */
export function pruneDeliveries(em: EntityManager, retentionMs: number, now: Date = new Date()): Promise<number> {
  return pruneOlderThan(em, 'consumer_delivery', 'delivered_at', retentionMs, now);
}

/** What {@link startRetention} prunes and how often. */
export interface RetentionOptions {
  readonly config: Pick<Config, 'outboxRetentionMs' | 'inboxRetentionMs' | 'retentionIntervalMs'>;
  readonly db: Database;
  readonly log: Logger;
  /** The service writes an outbox. */
  readonly outbox: boolean;
  /** The service consumes (has an inbox). */
  readonly inbox: boolean;
}

/** A running retention schedule; dispose to stop it (a prune in progress finishes first). */
export interface RunningRetention extends AsyncDisposable {
  /** Rows deleted since the start. */
  readonly pruned: { readonly outbox: number; readonly inbox: number };
  stop(): Promise<void>;
}

/**
 * Prunes at once, then every `retentionIntervalMs`; logs what each round deleted (info when it
 * deleted anything, so the log shows the tables being kept in check) and a failure as a warning.
 */
export function startRetention(options: RetentionOptions): RunningRetention {
  const { config, db, log } = options;
  const pruned = { outbox: 0, inbox: 0 };
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      const started = Date.now();
      try {
        const outbox = options.outbox ? await pruneOutbox(db.fork(), config.outboxRetentionMs) : 0;
        const inbox = options.inbox ? (await pruneInbox(db.fork(), config.inboxRetentionMs)) + (await pruneDeliveries(db.fork(), config.inboxRetentionMs)) : 0;
        pruned.outbox += outbox;
        pruned.inbox += inbox;
        if (outbox || inbox) log.info({ outboxPruned: outbox, inboxPruned: inbox, ms: Date.now() - started }, 'messaging tables pruned');
      } catch (error) {
        log.warn({ err: error }, 'pruning the messaging tables failed; retrying at the next round');
      }
      await sleep(config.retentionIntervalMs, stopping.signal).catch(() => undefined);
    }
  })();
  const stop = async () => {
    stopping.abort();
    await loop;
  };
  return { pruned, stop, [Symbol.asyncDispose]: stop };
}
