/**
 * The transactional outbox (DESIGN.md §7). A service writes its state change and the events it
 * causes in ONE transaction ({@link enqueueEvents}); the {@link OutboxRelay} publishes committed
 * events to Kafka in sequence order and marks them sent. At-least-once: a crash between publish
 * and mark publishes a batch again, which consumers' inboxes absorb.
 *
 * Live changes ({@link enqueueLive}) are outbox rows too, but local: no topic, never on Kafka. The
 * relay hands them, with the events it published, to the service's {@link OutboxProjector}, which
 * feeds Redis (live figures, cache invalidations) from committed changes only (ADR 0016).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { type Config, type ServiceName, serviceDatabaseUrl } from './config.ts';
import { type Database, type EntityManager, type NamedMigration, Migration } from './database.ts';
import { type AnyEventEnvelope, EVENT_ID_HEADER, EVENT_TYPE_HEADER, TRACEPARENT_HEADER, eventsTopic, traceHeaders, uuidv7 } from './events.ts';
import { type EventSchemaRegistry, defaultEventSchemaRegistry } from './event-schemas.ts';
import type { KafkaClient } from './kafka.ts';
import { SpanKind } from '@opentelemetry/api';
import { ORDER_ID_ATTRIBUTE, endSpans, inSpanOf, orderIdOf, startProducerSpan } from './messaging-tracing.ts';
import type { Logger } from './logger.ts';
import { logKafkaRetry } from './kafka-log.ts';
import { type BackoffOptions, type IBackoff, exponentialBackoff } from './resilience.ts';

/** The LISTEN/NOTIFY channel a commit with new outbox rows wakes the relay on (one per service database). */
export const OUTBOX_CHANNEL = 'outbox';

/** First half of the two-key advisory lock that serialises one aggregate's outbox writes. */
const AGGREGATE_LOCK_NAMESPACE = 0x5343_4f42; // "SCOB"

class CreateOutboxAndInbox extends Migration {
  override up(): void {
    // Debezium's outbox column names (aggregatetype, aggregateid, type, payload), so a CDC
    // connector could replace the relay without a schema change.
    this.addSql(`
      create table outbox (
        id uuid primary key,
        sequence bigserial not null unique,
        aggregatetype text not null,
        aggregateid text not null,
        type text not null,
        topic text not null,
        payload jsonb not null,
        headers jsonb not null default '{}'::jsonb,
        created_at timestamptz not null default now(),
        published_at timestamptz null
      )`);
    this.addSql('create index outbox_unpublished_sequence_idx on outbox (sequence) where published_at is null');
    this.addSql(`
      create table inbox (
        consumer text not null,
        event_id uuid not null,
        event_type text not null,
        processed_at timestamptz not null default now(),
        primary key (consumer, event_id)
      )`);
  }

  override down(): void {
    this.addSql('drop table if exists inbox');
    this.addSql('drop table if exists outbox');
  }
}

class LocalLiveRows extends Migration {
  override up(): void {
    // A live change has no topic: the relay projects it and never sends it to Kafka.
    this.addSql('alter table outbox alter column topic drop not null');
  }

  override down(): void {
    this.addSql('delete from outbox where topic is null');
    this.addSql('alter table outbox alter column topic set not null');
  }
}

class ConsumerDeliveries extends Migration {
  override up(): void {
    // How often a consumer was handed a chunk (scope 'chunk', keyed by its first offset) or one
    // message (scope 'event'): committed before the work, so a message that kills the process is
    // counted even though nothing else is.
    this.addSql(`
      create table consumer_delivery (
        consumer text not null,
        scope text not null check (scope in ('chunk', 'event')),
        topic text not null,
        partition integer not null,
        "offset" bigint not null,
        deliveries integer not null default 1,
        delivered_at timestamptz not null default now(),
        primary key (consumer, scope, topic, partition, "offset")
      )`);
  }

  override down(): void {
    this.addSql('drop table if exists consumer_delivery');
  }
}

/** Append these to a service's own migrations: they create the `outbox`, `inbox` and `consumer_delivery` tables. */
export const outboxMigrations: readonly NamedMigration[] = [
  { name: 'outbox_0001_create', class: CreateOutboxAndInbox },
  { name: 'outbox_0002_live_rows', class: LocalLiveRows },
  { name: 'outbox_0003_consumer_delivery', class: ConsumerDeliveries },
];

/** Options of {@link enqueueEvents}. */
export interface EnqueueOptions {
  /** The contracts to validate against (default: `schema/events/`). */
  readonly registry?: EventSchemaRegistry;
  /** The topic (without prefix) to publish on; default `<source>.events.v1` of each event. */
  readonly topic?: string;
}

/**
 * Validates `events` against their contracts and writes them to the outbox in the caller's
 * transaction, in the order given; the relay is woken when that transaction commits.
 *
 * Throws (so the caller's transaction rolls back) when an event is invalid, or when `em` is not
 * inside `em.transactional`: an outbox write outside the state change's transaction is the bug
 * the outbox exists to prevent.
 *
 * Per-aggregate order: the transaction takes a transaction-scoped advisory lock per aggregate
 * id (in a fixed order), so two transactions writing events of one aggregate serialise, and the
 * outbox sequence of one aggregate's events is their commit order: the relay can never see a
 * later event of an aggregate committed while an earlier one is still in flight.
 */
export async function enqueueEvents(em: EntityManager, events: readonly AnyEventEnvelope[], options: EnqueueOptions = {}): Promise<void> {
  if (events.length === 0) return;
  if (!em.isInTransaction()) {
    throw new Error('enqueueEvents must run inside em.transactional(), with the state change it announces');
  }
  const registry: EventSchemaRegistry = options.registry ?? defaultEventSchemaRegistry();
  for (const event of events) registry.validate(event);
  const trace = traceHeaders();
  await insertRows(
    em,
    events.map((event) => ({
      id: event.id,
      aggregatetype: event.aggregateType,
      aggregateid: event.aggregateId,
      type: event.type,
      topic: options.topic ?? eventsTopic(event.source),
      payload: event,
      headers: { [EVENT_ID_HEADER]: event.id, [EVENT_TYPE_HEADER]: event.type, ...trace },
    })),
  );
}

/**
 * A change that live subscribers or caches must see, recorded in the outbox with the state change
 * ({@link enqueueLive}) and handed to the service's {@link OutboxProjector} once committed. Never
 * sent to Kafka: other services do not need it, and their consumers would only skip it.
 */
export interface LiveChange {
  /** What changed, past tense: `StockLevelChanged`, `OrderChanged`. */
  readonly type: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  /** What the projector needs (the figure, the version), as JSON. */
  readonly payload: unknown;
}

/**
 * Writes live changes to the outbox in the caller's transaction, like {@link enqueueEvents}: same
 * per-aggregate order, same wake-up of the relay. Throws outside `em.transactional`.
 */
export async function enqueueLive(em: EntityManager, changes: readonly LiveChange[]): Promise<void> {
  if (changes.length === 0) return;
  if (!em.isInTransaction()) {
    throw new Error('enqueueLive must run inside em.transactional(), with the state change it announces');
  }
  await insertRows(
    em,
    changes.map((change) => ({
      id: uuidv7(),
      aggregatetype: change.aggregateType,
      aggregateid: change.aggregateId,
      type: change.type,
      topic: null,
      payload: change.payload,
      headers: traceHeaders(),
    })),
  );
}

interface NewOutboxRow {
  readonly id: string;
  readonly aggregatetype: string;
  readonly aggregateid: string;
  readonly type: string;
  /** Null for a live change (not sent to Kafka). */
  readonly topic: string | null;
  readonly payload: unknown;
  readonly headers: Readonly<Record<string, string>>;
}

async function insertRows(em: EntityManager, rows: readonly NewOutboxRow[]): Promise<void> {
  const aggregates = [...new Set(rows.map((r) => r.aggregateid))];
  await em.execute(
    `
    select pg_advisory_xact_lock(${AGGREGATE_LOCK_NAMESPACE}, h)
    from (select distinct hashtext(k) as h from jsonb_array_elements_text(?::jsonb) as k order by h) as keys`,
    [JSON.stringify(aggregates)],
  );
  // `order by ord`: the sequence follows the order of `rows`.
  await em.execute(
    `
    insert into outbox (id, aggregatetype, aggregateid, type, topic, payload, headers)
    select (e->>'id')::uuid, e->>'aggregatetype', e->>'aggregateid', e->>'type', e->>'topic', e->'payload', e->'headers'
    from jsonb_array_elements(?::jsonb) with ordinality as r(e, ord)
    order by ord`,
    [JSON.stringify(rows)],
  );
  await em.execute(`select pg_notify('${OUTBOX_CHANNEL}', '')`);
}

/** The outbox rows waiting to be published: how many, and the age of the oldest (0 when none). */
export async function outboxWaiting(em: EntityManager): Promise<{ readonly rows: number; readonly oldestSeconds: number }> {
  const [row] = await em.execute<{ rows: number; oldest: number | null }[]>(`
    select count(*)::integer as rows, extract(epoch from clock_timestamp() - min(created_at))::float8 as oldest
    from outbox where published_at is null`);
  return { rows: Number(row.rows), oldestSeconds: Math.max(0, Number(row.oldest ?? 0)) };
}

/** How many outbox rows are waiting to be published. */
export async function outboxBacklog(em: EntityManager): Promise<number> {
  return (await outboxWaiting(em)).rows;
}

/**
 * The session advisory lock key of one service's relay: a constant 64-bit number derived from the
 * service name (advisory locks are per database, so the name only keeps keys readable apart).
 */
export function outboxRelayLockKey(service: string): string {
  return createHash('sha256').update(`swiftcart:outbox-relay:${service}`).digest().readBigInt64BE(0).toString();
}

/** How to run a relay. */
export interface OutboxRelayOptions {
  readonly config: Config;
  readonly service: ServiceName;
  /** The service's database: drains run on its pool. */
  readonly db: Database;
  readonly kafka: KafkaClient;
  readonly log: Logger;
  /** Fallback poll when no notification arrives (default 1000 ms). */
  readonly pollIntervalMs?: number;
  /** How often a standby tries to take the lock (default 3000 ms). */
  readonly standbyRetryMs?: number;
  /** Rows per drain transaction (default 500). */
  readonly batchSize?: number;
  /** Backoff after a failure (default 100 ms doubling to 10 s, full jitter). */
  readonly backoff?: BackoffOptions;
  /** Feeds Redis from what each batch published and its live changes; see {@link OutboxProjector}. */
  readonly project?: OutboxProjector;
  /** Told, for each event a drain published to Kafka, how long it waited since its commit (seconds). */
  readonly onPublished?: (waitedSeconds: readonly number[]) => void;
}

/** One committed outbox row as a projector sees it: an event the relay sent to Kafka, or a live change. */
export interface ProjectedRow {
  readonly type: string;
  readonly aggregateId: string;
  /** The event envelope, or the live change's payload. */
  readonly payload: unknown;
  /** False for a live change ({@link enqueueLive}). */
  readonly published: boolean;
}

/**
 * Called by the active relay with every row of a batch that is done (events Kafka accepted, and
 * live changes), in sequence order, before they are marked, inside the drain transaction: a crash
 * before the mark hands them over again, so a projection must be idempotent (version-guarded).
 * A projector that throws is logged and the rows are marked all the same: Redis being down must not
 * hold back Kafka, and live subscribers re-read the truth when their Redis connection comes back.
 */
export type OutboxProjector = (rows: readonly ProjectedRow[]) => Promise<void>;

interface OutboxRow {
  id: string;
  aggregatetype: string;
  aggregateid: string;
  type: string;
  topic: string | null;
  payload: string;
  /** jsonb, parsed once by the driver. */
  headers: Record<string, unknown>;
  waited_s: number;
}

type WakeReason = 'timeout' | 'notify' | 'stop' | 'broken';

/**
 * Publishes a service's outbox to Kafka. Any number of replicas may run one; exactly one is
 * active: the holder of a session advisory lock taken on a dedicated connection. The active relay
 * LISTENs on {@link OUTBOX_CHANNEL} and drains when a commit notifies it, and also every
 * `pollIntervalMs` in case a notification was missed. A standby retries the lock every
 * `standbyRetryMs`; when the active process dies, PostgreSQL ends its session and releases the lock.
 *
 * A drain selects unpublished rows in sequence order `for update` (not `skip locked`: a relay
 * taking over while the previous one still finishes a batch must wait for it, not publish later
 * rows of the same aggregates first), publishes them (one request in flight: order kept per
 * key), marks them published and commits; it repeats until nothing is left. A failed publish
 * leaves the rows unpublished and retries after a backoff.
 */
export class OutboxRelay implements AsyncDisposable {
  readonly #options: OutboxRelayOptions;
  readonly #lockKey: string;
  #client: pg.Client | null = null;
  #clientBroken = false;
  #active = false;
  #stopping = false;
  #loop: Promise<void> | null = null;
  #wake: ((reason: WakeReason) => void) | null = null;
  #pendingNotify = false;
  #published = 0;
  #drains = 0;
  #sessionsLost = 0;
  #lastError: Error | null = null;
  #lastPublishedAt: Date | null = null;
  #ready: (() => void) | null = null;
  #idle = false;

  constructor(options: OutboxRelayOptions) {
    this.#options = options;
    this.#lockKey = outboxRelayLockKey(options.service);
  }

  /** Whether this relay holds the lock and publishes. */
  get isActive(): boolean {
    return this.#active;
  }

  /** Rows this relay has marked done since it started: events published to Kafka, and live changes. */
  get published(): number {
    return this.#published;
  }

  /** Drain transactions run (including empty ones). */
  get drains(): number {
    return this.#drains;
  }

  /** Times this relay held the lock and lost its session (database restart, network, terminated backend). */
  get sessionsLost(): number {
    return this.#sessionsLost;
  }

  /** The last failure (connecting, locking, publishing), or null. */
  get lastError(): Error | null {
    return this.#lastError;
  }

  /**
   * Whether this relay, active, has drained and now waits for a notification or its next poll:
   * nothing is in progress, and only a commit (or the poll) starts the next drain. For tests.
   */
  get idle(): boolean {
    return this.#idle;
  }

  get lastPublishedAt(): Date | null {
    return this.#lastPublishedAt;
  }

  /** Unpublished rows in the outbox (one `count(*)` on the pool). */
  backlog(): Promise<number> {
    return outboxBacklog(this.#options.db.fork());
  }

  /**
   * Starts the relay; resolves once it has tried to connect and take the lock once, so `isActive`
   * tells which replica won. Never rejects: failures are retried with backoff (see `lastError`).
   */
  start(): Promise<void> {
    if (this.#loop) throw new Error('OutboxRelay already started');
    const ready = new Promise<void>((resolve) => {
      this.#ready = resolve;
    });
    this.#loop = this.#run();
    return ready;
  }

  /** Stops draining, waits for a drain in progress, and releases the lock by closing the session. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.('stop');
    await this.#loop;
    await this.#resetClient();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #signalReady(): void {
    this.#ready?.();
    this.#ready = null;
  }

  /** Sleeps `ms`; a notification ends a `wakeable` sleep early, a stop or a lost session any sleep. */
  #sleep(ms: number, wakeable: boolean): Promise<WakeReason> {
    if (this.#stopping) return Promise.resolve('stop');
    if (this.#clientBroken) return Promise.resolve('broken');
    if (wakeable && this.#pendingNotify) return Promise.resolve('notify');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve('timeout');
      }, ms);
      this.#wake = (reason) => {
        if (reason === 'notify' && !wakeable) return;
        clearTimeout(timer);
        this.#wake = null;
        resolve(reason);
      };
    });
  }

  async #connect(): Promise<void> {
    const { config, service, log } = this.#options;
    const client = new pg.Client({
      connectionString: serviceDatabaseUrl(config, service),
      application_name: `swiftcart-${service}-outbox-relay`,
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
    });
    const lost = (error?: Error) => {
      if (this.#client !== client || this.#clientBroken) return;
      this.#clientBroken = true;
      this.#lastError = error ?? new Error('outbox relay session ended');
      if (this.#active) {
        this.#sessionsLost++;
        log.warn({ err: error }, 'outbox relay lost its lock session');
      }
      this.#active = false;
      this.#wake?.('broken');
    };
    client.on('error', (error) => lost(error));
    client.on('end', () => lost());
    client.on('notification', (message) => {
      if (message.channel !== OUTBOX_CHANNEL) return;
      this.#pendingNotify = true;
      this.#wake?.('notify');
    });
    this.#client = client;
    this.#clientBroken = false;
    await client.connect();
  }

  async #resetClient(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    this.#clientBroken = false;
    this.#active = false;
    // Ending the session releases the advisory lock and the LISTEN.
    if (client) await client.end().catch(() => undefined);
  }

  async #tryLock(): Promise<boolean> {
    const client = this.#client!;
    const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [this.#lockKey]);
    if (!rows[0].locked) return false;
    await client.query(`listen "${OUTBOX_CHANNEL}"`);
    this.#active = true;
    this.#options.log.info({ service: this.#options.service }, 'outbox relay active');
    return true;
  }

  async #run(): Promise<void> {
    const { pollIntervalMs = 1_000, standbyRetryMs = 3_000, log } = this.#options;
    const backoff = exponentialBackoff(this.#options.backoff ?? { baseMs: 100, maxMs: 10_000 });
    let failures = 0;
    /** The backoff after the latest of `failures` consecutive failures; a drain that succeeds starts it over. */
    let wait: IBackoff<unknown> | undefined;
    while (!this.#stopping) {
      try {
        if (this.#clientBroken) await this.#resetClient();
        if (!this.#client) await this.#connect();
        if (!this.#active && !(await this.#tryLock())) {
          this.#signalReady();
          await this.#sleep(standbyRetryMs, false);
          continue;
        }
        this.#signalReady();
        await this.#drain();
        failures = 0;
        wait = undefined;
        this.#idle = true;
        const reason = await this.#sleep(pollIntervalMs, true).finally(() => {
          this.#idle = false;
        });
        // A quiet session may have died without telling us; a trivial query finds out.
        if (reason === 'timeout' && this.#client && !this.#clientBroken) await this.#client.query('select 1');
      } catch (error) {
        failures++;
        this.#lastError = error as Error;
        // A new topic without a leader yet, on a starting broker, is said in words (kafka-log.ts).
        logKafkaRetry(log, error, failures, 'outbox relay failed; retrying', { failures });
        this.#signalReady();
        if (this.#clientBroken || !this.#active) await this.#resetClient();
        wait = wait ? wait.next(undefined) : backoff.next(undefined);
        await this.#sleep(wait.duration, false);
      }
    }
    this.#signalReady();
  }

  /** Publishes batches until a batch comes back short (nothing more was committed when it began). */
  async #drain(): Promise<void> {
    const batchSize = this.#options.batchSize ?? 500;
    for (;;) {
      if (this.#stopping || !this.#active) return;
      this.#pendingNotify = false;
      const { selected, published, failure } = await this.#drainBatch(batchSize);
      this.#drains++;
      if (published > 0) {
        this.#published += published;
        this.#lastPublishedAt = new Date();
      }
      if (failure) throw failure;
      if (selected < batchSize) return;
    }
  }

  /**
   * Hands `rows` to the projector in runs that share a trace, each run inside a span of that trace,
   * so that what the projector publishes (a live update on Redis) carries the trace on. Untraced rows
   * make one run: the projector still gets the whole batch when nothing is traced.
   */
  async #project(project: OutboxProjector, rows: readonly OutboxRow[]): Promise<void> {
    const runs: { headers: Record<string, string>; rows: OutboxRow[] }[] = [];
    for (const row of rows) {
      const headers = storedHeaders(row);
      const last = runs.at(-1);
      if (last && last.headers[TRACEPARENT_HEADER] === headers[TRACEPARENT_HEADER]) last.rows.push(row);
      else runs.push({ headers, rows: [row] });
    }
    for (const run of runs) {
      const projected = run.rows.map((row) => ({
        type: row.type,
        aggregateId: row.aggregateid,
        payload: JSON.parse(row.payload),
        published: row.topic !== null,
      }));
      if (!run.headers[TRACEPARENT_HEADER]) {
        await project(projected);
        continue;
      }
      const orderId = orderIdOfRow(run.rows[0]);
      await inSpanOf(run.headers, `${run.rows[0].type} project`, SpanKind.INTERNAL, orderId ? { [ORDER_ID_ATTRIBUTE]: orderId } : {}, () => project(projected));
    }
  }

  async #drainBatch(batchSize: number): Promise<{ selected: number; published: number; failure: Error | null }> {
    const { db, kafka } = this.#options;
    return db.fork().transactional(async (em) => {
      const rows = await em.execute<OutboxRow[]>(
        `
        select id, aggregatetype, aggregateid, type, topic, payload::text as payload, headers,
          extract(epoch from clock_timestamp() - created_at)::float8 as waited_s
        from outbox where published_at is null
        order by sequence limit ? for update`,
        [batchSize],
      );
      if (rows.length === 0) return { selected: 0, published: 0, failure: null };
      // One publish per topic, rows in sequence order: the producer keeps that order per partition.
      const byTopic = new Map<string, OutboxRow[]>();
      for (const row of rows) {
        if (row.topic === null) continue;
        const group = byTopic.get(row.topic);
        if (group) group.push(row);
        else byTopic.set(row.topic, [row]);
      }
      const sent = new Set<string>();
      let failure: Error | null = null;
      for (const [topic, group] of byTopic) {
        const produced = group.map((row) => startProducerSpan(storedHeaders(row), row.type, topic, () => orderIdOfRow(row)));
        try {
          await kafka.publish(
            topic,
            group.map((row, i) => ({ key: row.aggregateid, value: row.payload, headers: produced[i].headers })),
          );
          for (const row of group) sent.add(row.id);
          endSpans(produced.map((p) => p.span));
        } catch (error) {
          endSpans(
            produced.map((p) => p.span),
            error,
          );
          failure = error as Error;
          break;
        }
      }
      // Live changes need no broker: they are done whatever Kafka said.
      const doneRows = rows.filter((row) => row.topic === null || sent.has(row.id));
      if (this.#options.project && doneRows.length) {
        try {
          await this.#project(this.#options.project, doneRows);
        } catch (error) {
          this.#options.log.warn({ err: error, rows: doneRows.length }, 'outbox projection failed; live subscribers catch up when Redis is back');
        }
      }
      const done = doneRows.map((row) => row.id);
      if (done.length) {
        await em.execute(
          `
          update outbox set published_at = now()
          where id in (select value::uuid from jsonb_array_elements_text(?::jsonb))`,
          [JSON.stringify(done)],
        );
      }
      if (this.#options.onPublished && sent.size) this.#options.onPublished(rows.filter((row) => sent.has(row.id)).map((row) => Number(row.waited_s)));
      // What was published is marked even when a later topic failed; the failure is rethrown after commit.
      return { selected: rows.length, published: done.length, failure };
    });
  }
}

function storedHeaders(row: OutboxRow): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(row.headers ?? {})) if (typeof value === 'string') headers[name] = value;
  return headers;
}

function orderIdOfRow(row: OutboxRow): string | undefined {
  // An event row's payload is its envelope; a live change's is the change itself.
  const payload = JSON.parse(row.payload) as { data?: unknown };
  return orderIdOf(row.aggregatetype, row.aggregateid, row.topic === null ? payload : payload.data);
}
