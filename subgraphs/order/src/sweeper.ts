/**
 * The saga's deadline (DESIGN.md §6): an order still PENDING or AWAITING_PAYMENT after its
 * `deadline_at` is cancelled and compensated. A sweeper runs beside the HTTP server: every interval
 * it looks for overdue orders (served by `orders_deadline_idx`) and expires each in a transaction of
 * its own, taking the row with `for update skip locked`: an order that a consumer or a mutation is
 * changing right now, or that another replica's sweeper holds, is left for the next sweep.
 */
import { type Database, type EventSchemaRegistry, type Logger, inTransaction } from '@swiftcart/platform';
import { EXPIRABLE_STATUSES, react } from './saga.ts';
import type { OrderAnnouncer } from './live.ts';
import { applyDecision, loadSaga } from './store.ts';

/** Orders expired per query; a full batch is followed by the next one at once. */
export const SWEEP_BATCH_SIZE = 100;

export interface DeadlineSweeperOptions {
  readonly db: Database;
  readonly log: Logger;
  readonly registry: EventSchemaRegistry;
  /** Announces each expiry to live subscribers of the order. */
  readonly announcer: OrderAnnouncer;
  readonly intervalMs: number;
  readonly batchSize?: number;
  /** The clock (tests may pin it). */
  readonly now?: () => Date;
}

/** A running sweeper; disposing it stops the loop and waits for the sweep in progress. */
export interface DeadlineSweeper extends AsyncDisposable {
  /** Runs one sweep now (beside the loop) and resolves with the number of orders it cancelled. */
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

/** Expires one overdue order in its own transaction; false when it was locked or no longer due. */
async function expire(options: DeadlineSweeperOptions, orderId: string, now: Date): Promise<boolean> {
  return inTransaction(options.db, options.log, async (em, afterCommit) => {
    const saga = await loadSaga(em, orderId, { skipLocked: true });
    if (saga.order === null) return false;
    const result = react(saga.state, { type: 'ExpireOrder', data: { orderId, now: now.toISOString() } });
    await applyDecision(em, saga.order, result, { causationId: null, now, registry: options.registry, announcer: options.announcer, afterCommit });
    return result.transition !== null;
  });
}

/** One pass: every order overdue at its start, in batches, oldest deadline first. */
async function sweepOnce(options: DeadlineSweeperOptions, stopping: () => boolean): Promise<number> {
  const batchSize = options.batchSize ?? SWEEP_BATCH_SIZE;
  const now = options.now?.() ?? new Date();
  let cancelled = 0;
  // The cursor stays in Postgres' own text form: a JS Date would cut microseconds off.
  let afterDeadline = '-infinity';
  let afterId = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    // Keyset over (deadline_at, id), so an order that could not be expired (locked, failed) does
    // not come back in the same pass and starve the rest.
    const rows = await options.db.fork().execute<{ id: string; deadline_key: string }[]>(
      `
      select id, deadline_at::text as deadline_key from orders
      where status in (${EXPIRABLE_STATUSES.map(() => '?').join(', ')})
        and deadline_at <= ?
        and (deadline_at, id) > (?::timestamptz, ?::uuid)
      order by deadline_at, id
      limit ?`,
      [...EXPIRABLE_STATUSES, now, afterDeadline, afterId, batchSize],
    );
    for (const row of rows) {
      if (stopping()) return cancelled;
      try {
        if (await expire(options, row.id, now)) cancelled++;
      } catch (error) {
        options.log.error({ err: error, orderId: row.id }, 'expiring an overdue order failed; retried next sweep');
      }
    }
    if (rows.length < batchSize) return cancelled;
    const last = rows[rows.length - 1];
    afterDeadline = last.deadline_key;
    afterId = last.id;
  }
}

/** Starts sweeping at once and then every `intervalMs` after the previous sweep ended. */
export function startDeadlineSweeper(options: DeadlineSweeperOptions): DeadlineSweeper {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | null = null;
  const run = async () => {
    try {
      const cancelled = await sweepOnce(options, () => stopped);
      if (cancelled > 0) options.log.info({ cancelled }, 'overdue orders cancelled');
    } catch (error) {
      options.log.error({ err: error }, 'deadline sweep failed');
    }
  };
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    current = run().finally(() => {
      current = null;
      if (!stopped) timer = setTimeout(tick, options.intervalMs);
    });
  };
  tick();
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await current;
    })());
  return {
    sweep: () => sweepOnce(options, () => stopped),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
