/**
 * Keeps `analytics_event` from growing without end. Its rows make counting an event into a
 * generation a second time a no-op; after `INBOX_RETENTION_MS` (longer than the topics keep an
 * event, `KAFKA_RETENTION_MS`) no consumer can be handed that event again, exactly as the
 * platform's inbox reasons, so the row has nothing left to prevent. The figures it counted stay.
 */
import { type Config, type Database, type Logger, sleep } from '@swiftcart/platform';

/** Rows deleted per statement: short transactions, so pruning never holds a counting transaction back. */
const PRUNE_BATCH = 5_000;

/** Deletes the event records counted more than `retentionMs` before `now`; returns how many. */
export async function pruneCountedEvents(db: Pick<Database, 'fork'>, retentionMs: number, now = new Date()): Promise<number> {
  const em = db.fork();
  let total = 0;
  for (;;) {
    const [row] = await em.execute<{ deleted: number }[]>(
      `with deleted as (
         delete from analytics_event where ctid in (
           select ctid from analytics_event where counted_at < ?::timestamptz - (? * interval '1 millisecond') limit ?)
         returning 1)
       select count(*)::int as deleted from deleted`,
      [now.toISOString(), retentionMs, PRUNE_BATCH],
    );
    total += Number(row.deleted);
    if (Number(row.deleted) < PRUNE_BATCH) return total;
  }
}

/** Prunes at once, then every `RETENTION_INTERVAL_MS`, like the platform's inbox retention; dispose to stop. */
export function startEventRetention(options: {
  readonly config: Pick<Config, 'inboxRetentionMs' | 'retentionIntervalMs'>;
  readonly db: Pick<Database, 'fork'>;
  readonly log: Logger;
}): AsyncDisposable {
  const { config, db, log } = options;
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        const pruned = await pruneCountedEvents(db, config.inboxRetentionMs);
        if (pruned > 0) log.info({ pruned }, 'counted-event records pruned');
      } catch (error) {
        log.warn({ err: error }, 'pruning the counted-event records failed; retrying at the next round');
      }
      await sleep(config.retentionIntervalMs, stopping.signal).catch(() => undefined);
    }
  })();
  return {
    [Symbol.asyncDispose]: async () => {
      stopping.abort();
      await loop;
    },
  };
}
