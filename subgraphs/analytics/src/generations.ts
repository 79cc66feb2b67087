/**
 * Rebuilding the figures from the topics while the service keeps counting and answering (ADR 0023,
 * docs/analytics.md). A rebuild fills a new generation beside the CURRENT one:
 *
 * 1. BUILDING: a new consumer group (`analytics.rebuild.<N>`) counts the topics from their
 *    beginning into generation N, up to the high watermarks read when it started.
 * 2. FOLLOWING: the state changes under FOR UPDATE, which waits for every live transaction counting
 *    at that moment; every later one counts into N too. The rebuild reads the watermarks again and
 *    counts up to them: what the live consumer counted between the first watermarks and the
 *    change is in that stretch, and counting an event twice into N is a no-op (analytics_event).
 * 3. Swap: N becomes CURRENT and the old generation RETIRED in one transaction (FOR UPDATE again),
 *    so every read sees one whole generation. A bucket whose figures differ continues above the
 *    old one's version and is announced; then the old generation's rows are deleted.
 *
 * A rebuild that stops (Ctrl-C, a crash) leaves its generation BUILDING or FOLLOWING: the next
 * `rebuild` resumes it, with the same consumer group; `abandon` drops it.
 */
import {
  type ConsumerRuntime,
  type EntityManager,
  type KafkaClient,
  type Logger,
  type RunningConsumer,
  type ServiceRuntime,
  dlqTopic,
  inTransaction,
  sleep,
  startConsumer,
} from '@swiftcart/platform';
import { rebuildConsumer, rebuildConsumerName } from './consumer.ts';
import { GENERATION_LOCK_KEY } from './counting.ts';
import { BUCKET_COLUMNS, type BucketRow, type GenerationState, type SalesBucketRecord, toBucketRecord } from './entities.ts';
import { announceBuckets } from './live.ts';

/** What a rebuild runs on: a service runtime (the running service's, or a script's from openRuntime). */
export type RebuildRuntime = ConsumerRuntime & Pick<ServiceRuntime, 'redis' | 'events'>;

/** One generation, as `status` reports it. */
export interface GenerationStatus {
  readonly id: number;
  readonly state: GenerationState;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Events recorded as counted into it (records older than `INBOX_RETENTION_MS` are pruned; their figures stay). */
  readonly events: number;
  /** Its buckets (hours and days, every currency). */
  readonly buckets: number;
}

/** A rebuild refused before it started (the topics no longer hold the whole history). */
export class RebuildRefused extends Error {
  override name = 'RebuildRefused';
}

/** How a rebuild goes. */
export interface RebuildOptions {
  /**
   * Rebuild even when a topic no longer holds its first events (retention deleted them): the new
   * figures then miss those events. Without it such a rebuild is refused.
   */
  readonly allowTruncated?: boolean;
  /** How often the rebuild group's progress is checked (default 250 ms). */
  readonly pollMs?: number;
  /** Aborting stops the rebuild where it is; the generation stays for the next `rebuild` to resume. */
  readonly signal?: AbortSignal;
  /** Told of each step, for a command line to print; the rebuild goes on once what it returns has settled. */
  readonly onProgress?: (message: string) => void | Promise<void>;
}

/** What a finished rebuild did. */
export interface RebuildResult {
  /** The generation now CURRENT. */
  readonly generation: number;
  /** The generation it replaced (retired, its rows deleted); null when another process swapped first. */
  readonly retired: number | null;
  /** Whether an unfinished rebuild was resumed rather than a new one started. */
  readonly resumed: boolean;
  /** Events counted into the new generation. */
  readonly events: number;
  /**
   * Buckets whose figures differ from the old generation's at the swap (announced to subscribers):
   * corrections, or events the rebuild counted before the live consumer had.
   */
  readonly changedBuckets: number;
  readonly durationMs: number;
}

/** The topics the figures are counted from (those of the live consumer). */
function countedTopics(runtime: RebuildRuntime): readonly string[] {
  return rebuildConsumer(runtime, 0).topics;
}

/** The high watermark of every partition of every topic, keyed `topic:partition`. */
async function watermarks(kafka: KafkaClient, topics: readonly string[]): Promise<Map<string, { low: bigint; high: bigint }>> {
  const marks = new Map<string, { low: bigint; high: bigint }>();
  for (const topic of topics) {
    for (const p of await kafka.topicOffsets(topic)) marks.set(`${topic}:${p.partition}`, { low: BigInt(p.low), high: BigInt(p.high) });
  }
  return marks;
}

/** What `group` has still to count before it reaches `marks`: messages per `topic:partition` (empty when there). */
async function behind(kafka: KafkaClient, group: string, marks: ReadonlyMap<string, { low: bigint; high: bigint }>): Promise<Map<string, bigint>> {
  const lag = new Map<string, bigint>();
  const topics = new Set([...marks.keys()].map((key) => key.slice(0, key.lastIndexOf(':'))));
  for (const topic of topics) {
    const committed = new Map((await kafka.groupOffsets(group, topic)).map((c) => [c.partition, c.offset]));
    for (const [key, mark] of marks) {
      if (!key.startsWith(`${topic}:`)) continue;
      const offset = committed.get(Number(key.slice(topic.length + 1)));
      const at = offset === null || offset === undefined ? mark.low : BigInt(offset);
      if (at < mark.high) lag.set(key, mark.high - at);
    }
  }
  return lag;
}

/** Waits until the rebuild group has counted everything before `marks` (offsets are committed only after the counting commits). */
async function reach(
  runtime: RebuildRuntime,
  group: string,
  marks: ReadonlyMap<string, { low: bigint; high: bigint }>,
  options: RebuildOptions,
): Promise<void> {
  const pollMs = options.pollMs ?? 250;
  let reported = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const lag = await behind(runtime.kafka, group, marks);
    if (lag.size === 0) return;
    if (Date.now() - reported > 5_000) {
      reported = Date.now();
      const left = [...lag.values()].reduce((a, b) => a + b, 0n);
      await options.onProgress?.(`  ${left} messages left to count`);
    }
    await sleep(pollMs, options.signal);
  }
}

/** Starts generation N+1 (BUILDING), or finds the one a stopped rebuild left BUILDING or FOLLOWING. */
async function openGeneration(runtime: RebuildRuntime): Promise<{ id: number; state: GenerationState; resumed: boolean }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await inTransaction(runtime.db, runtime.log, async (em) => {
        const [unfinished] = await em.execute<{ id: number; state: GenerationState }[]>(
          `select id, state from analytics_generation where state in ('BUILDING', 'FOLLOWING') for update`,
        );
        if (unfinished) return { id: Number(unfinished.id), state: unfinished.state, resumed: true };
        const [created] = await em.execute<{ id: number }[]>(
          `insert into analytics_generation (id, state) select max(id) + 1, 'BUILDING' from analytics_generation returning id`,
        );
        return { id: Number(created.id), state: 'BUILDING' as const, resumed: false };
      });
    } catch (error) {
      // Another rebuild created one at the same moment (the one-rebuild index): resume that one.
      if ((error as { code?: string }).code === '23505' && attempt < 3) continue;
      throw error;
    }
  }
}

/** Changes `generation` from `from` to `to` holding GENERATION_LOCK_KEY exclusively (waiting for the transactions counting now); false when it was not `from`. */
async function changeState(runtime: RebuildRuntime, generation: number, from: GenerationState, to: GenerationState): Promise<boolean> {
  return inTransaction(runtime.db, runtime.log, async (em) => {
    await em.execute('select pg_advisory_xact_lock(?)', [GENERATION_LOCK_KEY]);
    const [row] = await em.execute<{ state: GenerationState }[]>('select state from analytics_generation where id = ? for update', [generation]);
    if (row?.state !== from) return false;
    await em.execute('update analytics_generation set state = ?, updated_at = now() where id = ?', [to, generation]);
    return true;
  });
}

/** The comparison of two buckets' figures (aliases n, the new, and o, the old). */
const FIGURES_DIFFER = `(n.orders_placed, n.orders_confirmed, n.orders_cancelled, n.orders_rejected, n.revenue, n.refunds, n.units_sold)
  is distinct from (o.orders_placed, o.orders_confirmed, o.orders_cancelled, o.orders_rejected, o.revenue, o.refunds, o.units_sold)`;
const SAME_BUCKET = 'o.granularity = n.granularity and o.currency = n.currency and o.start = n.start';

/**
 * Makes `generation` (FOLLOWING) CURRENT and the CURRENT one RETIRED, in one transaction that first
 * takes GENERATION_LOCK_KEY exclusively, so no live transaction counts while it runs. Versions never go back for
 * a subscriber: a bucket whose figures differ gets a version above the old one's (a bucket only
 * the old generation had comes back as zeros), and those buckets are returned to be announced.
 */
async function swap(runtime: RebuildRuntime, generation: number): Promise<{ retired: number; changed: SalesBucketRecord[] } | null> {
  return inTransaction(runtime.db, runtime.log, async (em) => {
    await em.execute('select pg_advisory_xact_lock(?)', [GENERATION_LOCK_KEY]);
    const rows = await em.execute<{ id: number; state: GenerationState }[]>(
      `select id, state from analytics_generation where id = ? or state = 'CURRENT' order by id for update`,
      [generation],
    );
    const next = rows.find((r) => Number(r.id) === generation);
    const old = rows.find((r) => r.state === 'CURRENT');
    if (next?.state !== 'FOLLOWING' || !old) return null;
    const retired = Number(old.id);
    const columns = BUCKET_COLUMNS.split(', ')
      .map((c) => `n.${c}`)
      .join(', ');
    const changed = await em.execute<(BucketRow & { changed: boolean })[]>(
      `
      update sales_bucket n set
        version = case when ${FIGURES_DIFFER} then greatest(n.version, o.version + 1) else greatest(n.version, o.version) end,
        updated_at = now()
      from sales_bucket o
      where n.generation = ? and o.generation = ? and ${SAME_BUCKET} and (${FIGURES_DIFFER} or n.version < o.version)
      returning ${columns}, ${FIGURES_DIFFER} as changed`,
      [generation, retired],
    );
    const vanished = await em.execute<BucketRow[]>(
      `
      insert into sales_bucket (generation, granularity, currency, start, version)
      select ?, o.granularity, o.currency, o.start, o.version + 1 from sales_bucket o
      where o.generation = ? and not exists (select 1 from sales_bucket n where n.generation = ? and ${SAME_BUCKET})
      returning ${BUCKET_COLUMNS}`,
      [generation, retired, generation],
    );
    const added = await em.execute<BucketRow[]>(
      `select ${columns} from sales_bucket n
       where n.generation = ? and not exists (select 1 from sales_bucket o where o.generation = ? and ${SAME_BUCKET})`,
      [generation, retired],
    );
    await em.execute(`update analytics_generation set state = 'RETIRED', updated_at = now() where id = ?`, [retired]);
    await em.execute(`update analytics_generation set state = 'CURRENT', updated_at = now() where id = ?`, [generation]);
    return { retired, changed: [...changed.filter((row) => row.changed), ...vanished, ...added].map(toBucketRecord) };
  });
}

/** Deletes `where` rows of `table` a slice at a time, so no single transaction holds millions of row locks. */
async function deleteInSlices(em: EntityManager, table: string, where: string, params: readonly unknown[]): Promise<number> {
  let deleted = 0;
  for (;;) {
    const rows = await em.execute<{ n: number }[]>(
      `with gone as (delete from ${table} where ctid = any(array(select ctid from ${table} where ${where} limit 10000)) returning 1)
       select count(*)::int as n from gone`,
      [...params],
    );
    const n = Number(rows[0]?.n ?? 0);
    deleted += n;
    if (n === 0) return deleted;
  }
}

/** Deletes the figures and event records of every RETIRED generation. */
export async function purgeRetired(runtime: Pick<RebuildRuntime, 'db'>): Promise<number> {
  const em = runtime.db.fork();
  const retired = (await em.execute<{ id: number }[]>(`select id from analytics_generation where state = 'RETIRED'`)).map((r) => Number(r.id));
  let deleted = 0;
  for (const id of retired) {
    for (const table of ['sales_bucket', 'product_sales', 'analytics_event']) deleted += await deleteInSlices(em, table, 'generation = ?', [id]);
  }
  return deleted;
}

/** Forgets a finished rebuild consumer: its Kafka group, its inbox and delivery rows. It will never read again. */
async function forgetConsumer(runtime: Pick<RebuildRuntime, 'db' | 'kafka'>, consumer: string): Promise<void> {
  await runtime.kafka.deleteGroups([consumer]);
  const em = runtime.db.fork();
  await deleteInSlices(em, 'inbox', 'consumer = ?', [consumer]);
  await deleteInSlices(em, 'consumer_delivery', 'consumer = ?', [consumer]);
}

async function countEventsOf(runtime: Pick<RebuildRuntime, 'db'>, generation: number): Promise<number> {
  const [row] = await runtime.db.fork().execute<{ n: number }[]>('select count(*)::int as n from analytics_event where generation = ?', [generation]);
  return Number(row.n);
}

/** Refuses to rebuild from topics that lost their first events, unless told to. */
async function checkHistory(runtime: RebuildRuntime, topics: readonly string[], options: RebuildOptions): Promise<void> {
  const truncated = [...(await watermarks(runtime.kafka, topics))].filter(([, mark]) => mark.low > 0n);
  if (truncated.length === 0) return;
  const where = truncated.map(([key, mark]) => `${key} starts at offset ${mark.low}`).join(', ');
  if (!options.allowTruncated) {
    throw new RebuildRefused(
      `the topics no longer hold their whole history (${where}): a rebuild would lose the figures of the deleted events. ` +
        'Pass --allow-truncated to rebuild from what is left.',
    );
  }
  await options.onProgress?.(`rebuilding from truncated topics (${where}): the deleted events will be missing from the figures`);
}

/**
 * Rebuilds the figures into a new generation and swaps it in (see the module comment), or resumes
 * an unfinished rebuild. Resolves once the new generation is CURRENT and the old one's rows are
 * gone; rejects with {@link RebuildRefused} before starting anything when the topics lost events.
 */
export async function rebuild(runtime: RebuildRuntime, options: RebuildOptions = {}): Promise<RebuildResult> {
  const started = Date.now();
  const progress = options.onProgress ?? (() => undefined);
  const log: Logger = runtime.log.child({ component: 'rebuild' });
  const topics = countedTopics(runtime);
  await runtime.kafka.ensureTopics([...topics.map((name) => ({ name })), ...topics.map((name) => ({ name: dlqTopic(name), partitions: 1 }))]);
  await checkHistory(runtime, topics, options);
  await purgeRetired(runtime);

  const generation = await openGeneration(runtime);
  const group = rebuildConsumerName(generation.id);
  await progress(
    generation.resumed
      ? `resuming the rebuild of generation ${generation.id} (${generation.state}) with consumer group ${group}`
      : `rebuilding into generation ${generation.id} with consumer group ${group}, from the beginning of ${topics.join(' and ')}`,
  );
  log.info({ generation: generation.id, resumed: generation.resumed, state: generation.state }, 'rebuild started');

  const consumer: RunningConsumer = await startConsumer({ ...rebuildConsumer(runtime, generation.id), runtime, registry: runtime.events });
  try {
    if (generation.state === 'BUILDING') {
      await reach(runtime, group, await watermarks(runtime.kafka, topics), options);
      await progress(`generation ${generation.id} has caught up with the topics; it now follows the live events too`);
      if (!(await changeState(runtime, generation.id, 'BUILDING', 'FOLLOWING'))) throw new Error(`generation ${generation.id} is no longer BUILDING`);
    }
    // After the change: every event past these marks is counted into the new generation by the
    // live consumer, since it was fetched after the change committed.
    await reach(runtime, group, await watermarks(runtime.kafka, topics), options);
  } finally {
    await consumer.stop();
  }
  await progress(`generation ${generation.id} has counted the topics up to the watermarks read after that; swapping it in`);
  const events = await countEventsOf(runtime, generation.id);
  const swapped = await swap(runtime, generation.id);
  // Abandoned meanwhile (another command): nothing was swapped in, and saying "done" would be a lie.
  if (!swapped) throw new Error(`generation ${generation.id} is no longer FOLLOWING (abandoned meanwhile?); nothing was swapped in`);
  {
    await announceBuckets(runtime, swapped.changed);
    await progress(
      `generation ${generation.id} is CURRENT (${events} events counted; ${swapped.changed.length} buckets differ from generation ${swapped.retired}'s); deleting generation ${swapped.retired}`,
    );
    log.info({ generation: generation.id, retired: swapped.retired, events, changedBuckets: swapped.changed.length }, 'rebuild swapped in');
  }
  await purgeRetired(runtime);
  await forgetConsumer(runtime, group);
  return {
    generation: generation.id,
    retired: swapped.retired,
    resumed: generation.resumed,
    events,
    changedBuckets: swapped.changed.length,
    durationMs: Date.now() - started,
  };
}

/** Drops an unfinished rebuild (BUILDING or FOLLOWING): its generation is RETIRED and its rows deleted. Returns its id, or null when there was none. */
export async function abandonRebuild(runtime: Pick<RebuildRuntime, 'db' | 'log' | 'kafka'>): Promise<number | null> {
  const abandoned = await inTransaction(runtime.db, runtime.log, async (em) => {
    // As a state change: no transaction is counting into it when it becomes RETIRED, so its rows are all deleted below.
    await em.execute('select pg_advisory_xact_lock(?)', [GENERATION_LOCK_KEY]);
    const [row] = await em.execute<{ id: number }[]>(`select id from analytics_generation where state in ('BUILDING', 'FOLLOWING') for update`);
    if (!row) return null;
    await em.execute(`update analytics_generation set state = 'RETIRED', updated_at = now() where id = ?`, [row.id]);
    return Number(row.id);
  });
  if (abandoned !== null) {
    await purgeRetired(runtime);
    await forgetConsumer(runtime, rebuildConsumerName(abandoned));
  }
  return abandoned;
}

/** Every generation, newest first, with its size. */
export async function generationStatus(runtime: Pick<RebuildRuntime, 'db'>): Promise<GenerationStatus[]> {
  const rows = await runtime.db.fork().execute<{ id: number; state: GenerationState; created_at: Date; updated_at: Date; events: number; buckets: number }[]>(
    `select g.id, g.state, g.created_at, g.updated_at,
            (select count(*)::int from analytics_event e where e.generation = g.id) as events,
            (select count(*)::int from sales_bucket b where b.generation = g.id) as buckets
     from analytics_generation g order by g.id desc`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    state: r.state,
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
    events: Number(r.events),
    buckets: Number(r.buckets),
  }));
}
