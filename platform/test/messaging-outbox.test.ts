/**
 * The transactional outbox and its relay against real PostgreSQL and Kafka: atomicity with the
 * caller's transaction, order per aggregate, wake-up on commit, and one active relay per service.
 * Each test has its own database and topic prefix.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import {
  type Config,
  type Database,
  type EntityManager,
  type IncomingMessage,
  type KafkaClient,
  type AnyEventEnvelope,
  EventSchemaRegistry,
  EventValidationError,
  Migration,
  OutboxRelay,
  createEvent,
  createKafka,
  createLogger,
  enqueueEvents,
  openDatabase,
  outboxMigrations,
  pruneInbox,
  pruneOutbox,
} from '../src/index.ts';
import { isolatedConfig } from '../../test/support/stack.ts';
import { dropDatabases, ensureDatabases } from '../../scripts/infra.ts';
import { envelopeSchema } from '../../test/support/event-schema.ts';
import { drain } from '../../test/support/drain.ts';
import { waitFor } from '../../test/support/wait.ts';

const log = createLogger('messaging-outbox-test', process.env.TEST_LOG_LEVEL ?? 'fatal');
const TOPIC = 'order.events.v1';

const Thing = defineEntity({
  name: 'Thing',
  tableName: 'thing',
  properties: { id: p.string().primary(), n: p.integer() },
});

class CreateThing extends Migration {
  override up(): void {
    this.addSql('create table thing (id text primary key, n integer not null)');
  }
}

let schemaDir: string;
let registry: EventSchemaRegistry;

before(() => {
  schemaDir = mkdtempSync(path.join(tmpdir(), 'swiftcart-outbox-schemas-'));
  writeFileSync(
    path.join(schemaDir, 'ThingHappened.v1.json'),
    JSON.stringify(
      envelopeSchema({
        type: 'ThingHappened',
        aggregateType: 'Thing',
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        source: { const: 'order' },
        data: { type: 'object', required: ['n'], additionalProperties: false, properties: { n: { type: 'integer', minimum: 0 } } },
      }),
    ),
  );
  registry = new EventSchemaRegistry(schemaDir);
});
after(() => rmSync(schemaDir, { recursive: true, force: true }));

function thingHappened(aggregateId: string, n: number): AnyEventEnvelope {
  return createEvent({ type: 'ThingHappened', source: 'order', aggregateType: 'Thing', aggregateId, data: { n } });
}

/** One isolated service database (outbox migrations appended) and Kafka client. */
interface Env {
  readonly config: Config;
  readonly db: Database;
  readonly kafka: KafkaClient;
  readonly relays: OutboxRelay[];
  relay(options?: Partial<ConstructorParameters<typeof OutboxRelay>[0]>): Promise<OutboxRelay>;
  /** The drain barrier: the outbox is empty and every consumer group of this prefix (the collectors) has read everything. */
  drained(): Promise<void>;
  close(): Promise<void>;
}

async function openEnv(): Promise<Env> {
  const config = isolatedConfig();
  await ensureDatabases(config, ['order']);
  const db = await openDatabase({
    config,
    service: 'order',
    entities: [Thing],
    migrations: [{ name: '0001_thing', class: CreateThing }, ...outboxMigrations],
    log,
  });
  await db.migrate();
  const kafka = createKafka(config, log, 'messaging-outbox-test');
  await kafka.ensureTopics([{ name: TOPIC, partitions: 3 }]);
  const relays: OutboxRelay[] = [];
  return {
    config,
    db,
    kafka,
    relays,
    async relay(options = {}) {
      const relay = new OutboxRelay({
        config,
        service: 'order',
        db,
        kafka,
        log,
        pollIntervalMs: 100,
        standbyRetryMs: 150,
        backoff: { baseMs: 10, maxMs: 100 },
        ...options,
      });
      relays.push(relay);
      await relay.start();
      return relay;
    },
    drained: () => drain({ config, outboxes: { order: () => db.fork() } }),
    async close() {
      await Promise.allSettled(relays.map((r) => r.stop()));
      await kafka.deleteTopics([TOPIC]).catch(() => undefined);
      await kafka.close();
      await db.close();
      await dropDatabases(config, ['order']);
    },
  };
}

/** Commits a state change and its events in one transaction. */
async function commit(db: Database, events: readonly AnyEventEnvelope[]): Promise<void> {
  await db.fork().transactional(async (em) => {
    for (const e of events) {
      await em.execute('insert into thing (id, n) values (?, 1) on conflict (id) do update set n = thing.n + 1', [e.aggregateId]);
    }
    await enqueueEvents(em, events, { registry });
  });
}

/** Consumes the topic from the beginning in a fresh group, collecting every message. */
async function collect(kafka: KafkaClient) {
  const messages: IncomingMessage[] = [];
  const subscription = await kafka.consume(
    `collector.${randomUUID()}`,
    [TOPIC],
    async (m) => {
      messages.push(m);
    },
    { maxWaitTimeInMs: 100 },
  );
  return { messages, stop: () => subscription.stop() };
}

const countRows = async (em: EntityManager, sql: string) => Number((await em.execute<{ n: number }[]>(sql))[0].n);

describe('outbox: atomic with the state change', () => {
  let env: Env;
  before(async () => {
    env = await openEnv();
  });
  after(() => env.close());

  it('a rolled-back transaction leaves no row and publishes nothing; a committed one is published with key and headers', async () => {
    const relay = await env.relay();
    const collector = await collect(env.kafka);
    const lost = thingHappened('thing-1', 1);
    await assert.rejects(
      env.db.fork().transactional(async (em) => {
        await em.execute(`insert into thing (id, n) values ('thing-1', 1)`);
        await enqueueEvents(em, [lost], { registry });
        throw new Error('the state change fails after the enqueue');
      }),
      /state change fails/,
    );
    assert.equal(await countRows(env.db.fork(), 'select count(*)::int as n from outbox'), 0);
    assert.equal(await countRows(env.db.fork(), 'select count(*)::int as n from thing'), 0);

    const kept = thingHappened('thing-1', 2);
    await commit(env.db, [kept]);
    const message = await waitFor(() => collector.messages.find((m) => m.headers.id === kept.id), 'the committed event on Kafka');
    assert.equal(message.key, 'thing-1');
    assert.equal(message.headers.type, 'ThingHappened');
    assert.equal(message.topic, env.kafka.topic(TOPIC));
    assert.deepEqual(JSON.parse(message.value!), kept);
    // The rolled-back event would have come first on the same key's partition.
    await env.drained();
    assert.deepEqual(
      collector.messages.map((m) => m.headers.id),
      [kept.id],
    );
    await waitFor(async () => (await relay.backlog()) === 0, 'the row marked published');
    assert.equal(relay.published, 1);
    await collector.stop();
  });

  it('an invalid event, or an enqueue outside a transaction, is refused and writes nothing', async () => {
    const invalid = createEvent({ type: 'ThingHappened', source: 'order', aggregateType: 'Thing', aggregateId: 'thing-2', data: { n: -1 } });
    await assert.rejects(commit(env.db, [thingHappened('thing-2', 1), invalid]), EventValidationError);
    await assert.rejects(enqueueEvents(env.db.fork(), [thingHappened('thing-2', 1)], { registry }), /inside em\.transactional/);
    assert.equal(await countRows(env.db.fork(), `select count(*)::int as n from thing where id = 'thing-2'`), 0);
    assert.equal(await countRows(env.db.fork(), `select count(*)::int as n from outbox where aggregateid = 'thing-2'`), 0);
  });

  it('a row committed without a notification is published by the poll', async () => {
    const relay = env.relays[0];
    const before = relay.published;
    const event = thingHappened('thing-3', 1);
    await env.db.fork().transactional(async (em) => {
      await em.execute(
        `insert into outbox (id, aggregatetype, aggregateid, type, topic, payload, headers)
        values (?, 'Thing', 'thing-3', 'ThingHappened', ?, ?::jsonb, ?::jsonb)`,
        [event.id, TOPIC, JSON.stringify(event), JSON.stringify({ id: event.id, type: event.type })],
      );
    });
    await waitFor(() => relay.published === before + 1, 'the poll to publish it', 3_000);
  });
});

describe('retention: pruning removes only what is due', () => {
  const config = isolatedConfig();
  let db: Database;
  before(async () => {
    await ensureDatabases(config, ['order']);
    db = await openDatabase({ config, service: 'order', entities: [Thing], migrations: [...outboxMigrations], log });
    await db.migrate();
  });
  after(async () => {
    await db?.close();
    await dropDatabases(config, ['order']);
  });

  const HOUR = 3_600_000;
  const at = (hoursAgo: number) => new Date(Date.UTC(2026, 11, 5, 12) - hoursAgo * HOUR).toISOString();
  /** The clock the prunes are asked at: the rows are dated against it, not against the real one. */
  const now = new Date(Date.UTC(2026, 11, 5, 12));

  it('deletes outbox rows done longer ago than the retention, never a row not yet done', async () => {
    const em = db.fork();
    const rows: [string, string, string | null][] = [
      ['published 3 h ago', at(4), at(3)],
      ['live change done 2 h ago', at(2), at(2)],
      ['published 30 min ago', at(1), at(0.5)],
      ['waiting for 5 h', at(5), null],
    ];
    for (const [aggregateid, created, published] of rows) {
      await em.execute(
        `insert into outbox (id, aggregatetype, aggregateid, type, topic, payload, created_at, published_at)
        values (?, 'Thing', ?, 'ThingHappened', ?, '{}'::jsonb, ?::timestamptz, ?::timestamptz)`,
        [randomUUID(), aggregateid, aggregateid.startsWith('live') ? null : TOPIC, created, published],
      );
    }
    assert.equal(await pruneOutbox(em, HOUR, now), 2);
    const left = await em.execute<{ aggregateid: string }[]>('select aggregateid from outbox order by aggregateid');
    assert.deepEqual(
      left.map((r) => r.aggregateid),
      ['published 30 min ago', 'waiting for 5 h'],
    );
    assert.equal(await pruneOutbox(em, HOUR, now), 0, 'a second prune finds nothing due');
  });

  it('deletes inbox rows processed longer ago than the retention, for every consumer', async () => {
    const em = db.fork();
    for (const [consumer, hoursAgo] of [
      ['a', 200],
      ['b', 200],
      ['a', 100],
      ['b', 1],
    ] as const) {
      await em.execute(`insert into inbox (consumer, event_id, event_type, processed_at) values (?, ?, 'ThingHappened', ?::timestamptz)`, [
        consumer,
        randomUUID(),
        at(hoursAgo),
      ]);
    }
    assert.equal(await pruneInbox(em, 150 * HOUR, now), 2);
    assert.equal(await countRows(em, 'select count(*)::int as n from inbox'), 2);
    assert.equal(await pruneInbox(em, 50 * HOUR, now), 1);
    assert.equal(await countRows(em, 'select count(*)::int as n from inbox'), 1);
  });
});

describe('outbox relay: publish failures', () => {
  let env: Env;
  before(async () => {
    env = await openEnv();
  });
  after(() => env.close());

  it('leaves the rows unpublished when Kafka refuses them, backs off and publishes them later', async () => {
    // Fault injection around the real client: the first two publishes fail as a broker outage would.
    let refusals = 2;
    const flaky: KafkaClient = {
      ...env.kafka,
      topic: (name) => env.kafka.topic(name),
      async publish(topic, messages) {
        if (refusals-- > 0) throw new Error('broker unavailable');
        return env.kafka.publish(topic, messages);
      },
    };
    const relay = await env.relay({ kafka: flaky });
    const collector = await collect(env.kafka);
    const event = thingHappened('thing-f', 1);
    await commit(env.db, [event]);
    await waitFor(() => relay.lastError !== null, 'a failed attempt');
    assert.match(relay.lastError!.message, /broker unavailable/);
    await waitFor(() => relay.published === 1, 'the event published');
    assert.equal(refusals, -1, 'two refusals, then one successful publish');
    assert.equal(await relay.backlog(), 0);
    await waitFor(() => collector.messages.some((m) => m.headers.id === event.id), 'the event on Kafka');
    await env.drained();
    assert.equal(collector.messages.length, 1);
    await collector.stop();
  });
});

describe('outbox: order per aggregate', () => {
  let env: Env;
  before(async () => {
    env = await openEnv();
  });
  after(() => env.close());

  it('3 aggregates × 50 events from concurrent transactions arrive in sequence order per key', async () => {
    await env.relay({ pollIntervalMs: 50 });
    const collector = await collect(env.kafka);
    const aggregates = ['agg-a', 'agg-b', 'agg-c'];
    // Each aggregate's 50 events in transactions of 1 to 3 events, interleaved across aggregates,
    // committed by 10 concurrent writers while the relay publishes.
    const chunks: AnyEventEnvelope[][] = [];
    for (let i = 0, size = 1; i < 50; i += size, size = (size % 3) + 1) {
      for (const a of aggregates) chunks.push(Array.from({ length: Math.min(size, 50 - i) }, (_, k) => thingHappened(a, i + k)));
    }
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) await commit(env.db, chunk);
      }),
    );
    await waitFor(() => collector.messages.length >= 150 && true, '150 messages', 30_000);
    await collector.stop();
    const rows = await env.db.fork().execute<{ id: string; aggregateid: string }[]>('select id, aggregateid from outbox order by sequence');
    assert.equal(rows.length, 150);
    assert.equal(new Set(collector.messages.map((m) => m.headers.id)).size, 150, 'each event once');
    for (const a of aggregates) {
      const expected = rows.filter((r) => r.aggregateid === a).map((r) => r.id);
      const received = collector.messages.filter((m) => m.key === a);
      assert.equal(expected.length, 50);
      assert.deepEqual(
        received.map((m) => m.headers.id),
        expected,
        `${a} arrives in outbox sequence order`,
      );
      assert.equal(new Set(received.map((m) => m.partition)).size, 1, `${a} stays on one partition`);
    }
  });
});

describe('outbox relay: wake-up on commit', () => {
  let env: Env;
  before(async () => {
    env = await openEnv();
  });
  after(() => env.close());

  it('publishes within 1 s of the commit although it polls only every 10 s (LISTEN/NOTIFY)', async () => {
    const relay = await env.relay({ pollIntervalMs: 10_000 });
    assert.ok(relay.isActive);
    const collector = await collect(env.kafka);
    // A first event connects the producer (its first publish takes longer); after its drain only
    // a notification can wake the relay for the next 10 s.
    await commit(env.db, [thingHappened('thing-w', 0)]);
    await waitFor(() => relay.published === 1, 'the warm-up event published', 9_000);
    await waitFor(() => relay.idle, 'the relay to wait for a notification or its next poll', 9_000, undefined, 10);
    const drainsBefore = relay.drains;
    const event = thingHappened('thing-w', 1);
    await commit(env.db, [event]);
    const committedAt = Date.now();
    await waitFor(() => relay.published === 2, 'the relay to publish', 3_000, undefined, 10);
    const elapsed = Date.now() - committedAt;
    assert.ok(elapsed < 1_000, `published ${elapsed} ms after commit`);
    assert.ok(relay.drains > drainsBefore);
    await waitFor(() => collector.messages.some((m) => m.headers.id === event.id), 'the event on Kafka');
    await collector.stop();
  });
});

describe('outbox relay: one active per service', () => {
  let env: Env;
  before(async () => {
    env = await openEnv();
  });
  after(() => env.close());

  it('two relays: one active, every event published once; the standby takes over when the active stops or dies', async () => {
    const first = await env.relay();
    const second = await env.relay();
    assert.equal([first, second].filter((r) => r.isActive).length, 1, 'exactly one holds the lock');
    const active = first.isActive ? first : second;
    const standby = active === first ? second : first;
    const collector = await collect(env.kafka);

    const batch1 = Array.from({ length: 20 }, (_, i) => thingHappened(`thing-${i % 4}`, i));
    for (let i = 0; i < batch1.length; i += 5) await commit(env.db, batch1.slice(i, i + 5));
    await waitFor(() => collector.messages.length >= 20, '20 messages');
    await waitFor(() => active.published === 20, 'the active relay to count them');
    await env.drained();
    assert.equal(collector.messages.length, 20, 'nothing published twice');
    assert.equal(active.published, 20);
    assert.equal(standby.published, 0);
    assert.equal(standby.isActive, false);

    // A graceful stop releases the lock; the standby takes it on its next try.
    await active.stop();
    await waitFor(() => standby.isActive, 'the standby to take over', 5_000);
    const batch2 = Array.from({ length: 5 }, (_, i) => thingHappened('thing-x', i));
    await commit(env.db, batch2);
    await waitFor(() => collector.messages.length >= 25, '25 messages');
    // (The counter moves when the drain transaction commits, just after Kafka has the messages.)
    await waitFor(() => standby.published === 5, 'the standby to count them');

    // A third relay waits; the active one's session is killed (as when its process dies or the
    // network drops it): PostgreSQL releases the lock, the relay notices, and whichever relay
    // takes the lock next (the third, or the killed one after reconnecting) publishes alone.
    const third = await env.relay();
    assert.equal(third.isActive, false);
    const lockHolder = async () =>
      (
        await env.db.fork().execute<{ pid: number }[]>(
          `select pid from pg_locks where locktype = 'advisory' and objsubid = 1 and granted
       and database = (select oid from pg_database where datname = current_database())`,
        )
      )[0]?.pid;
    const killed = await lockHolder();
    assert.ok(killed);
    await env.db.fork().execute('select pg_terminate_backend(?)', [killed]);
    await waitFor(() => standby.sessionsLost === 1, 'the killed relay to notice');
    assert.match(String(standby.lastError?.message), /terminating connection/);
    const next = await waitFor(
      async () => {
        const holder = await lockHolder();
        const actives = [standby, third].filter((r) => r.isActive);
        return holder && holder !== killed && actives.length === 1 ? actives[0] : undefined;
      },
      'a new lock holder',
      5_000,
    );
    const publishedBefore = next.published;
    const batch3 = Array.from({ length: 5 }, (_, i) => thingHappened('thing-y', i));
    await commit(env.db, batch3);
    await waitFor(() => collector.messages.length >= 30, '30 messages');
    await waitFor(() => next.published - publishedBefore >= 5, 'the new holder to count them');
    await env.drained();
    await collector.stop();
    const ids = collector.messages.map((m) => m.headers.id);
    assert.equal(ids.length, 30);
    assert.deepEqual(new Set(ids), new Set([...batch1, ...batch2, ...batch3].map((e) => e.id)));
    assert.equal(next.published - publishedBefore, 5);
    assert.equal(standby.published + third.published, 10, 'only the lock holders published');
    assert.equal([standby, third].filter((r) => r.isActive).length, 1);
    assert.equal(await third.backlog(), 0);
  });
});
