/**
 * The inbox consumer and the DLQ command against real PostgreSQL and Kafka: duplicates applied
 * once, schema failures and exhausted retries dead-lettered without blocking the partition,
 * after-commit effects, and `npm run dlq` listing and replaying dead letters exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineEntity, p } from '@mikro-orm/core';
import {
  type AnyEventEnvelope,
  type Config,
  type Database,
  type EventHandler,
  type KafkaClient,
  type OutgoingMessage,
  type RunningConsumer,
  EventSchemaRegistry,
  Migration,
  REPO_ROOT,
  createEvent,
  createKafka,
  createLogger,
  dlqTopic,
  openDatabase,
  outboxMigrations,
  startConsumer,
} from '../src/index.ts';
import { isolatedConfig } from '../../test/support/stack.ts';
import { dropDatabases, ensureDatabases } from '../../scripts/infra.ts';
import { main as dlqMain } from '../../scripts/dlq.ts';
import { envelopeSchema } from '../../test/support/event-schema.ts';
import { waitFor } from '../../test/support/wait.ts';

const log = createLogger('messaging-inbox-test', process.env.TEST_LOG_LEVEL ?? 'fatal');

const Applied = defineEntity({
  name: 'Applied',
  tableName: 'applied',
  properties: { id: p.bigint().primary().autoincrement(), eventId: p.uuid(), label: p.text() },
});

class CreateApplied extends Migration {
  override up(): void {
    this.addSql('create table applied (id bigint generated always as identity primary key, event_id uuid not null, label text not null)');
  }
}

let schemaDir: string;
let registry: EventSchemaRegistry;
let config: Config;
let db: Database;
let kafka: KafkaClient;

before(async () => {
  schemaDir = mkdtempSync(path.join(tmpdir(), 'swiftcart-inbox-schemas-'));
  writeFileSync(
    path.join(schemaDir, 'ThingHappened.v1.json'),
    JSON.stringify(
      envelopeSchema({
        type: 'ThingHappened',
        aggregateType: 'Thing',
        $schema: 'http://json-schema.org/draft-07/schema#',
        data: { type: 'object', required: ['label'], additionalProperties: false, properties: { label: { type: 'string', minLength: 1 } } },
      }),
    ),
  );
  registry = new EventSchemaRegistry(schemaDir);
  config = isolatedConfig();
  await ensureDatabases(config, ['order']);
  db = await openDatabase({
    config,
    service: 'order',
    entities: [Applied],
    migrations: [{ name: '0001_applied', class: CreateApplied }, ...outboxMigrations],
    log,
  });
  await db.migrate();
  kafka = createKafka(config, log, 'messaging-inbox-test');
});

after(async () => {
  await kafka
    .deleteTopics(['inbox.events.v1', 'inbox.events.v1.dlq', 'prepare.events.v1', 'prepare.events.v1.dlq', 'cli.events.v1', 'cli.events.v1.dlq'])
    .catch(() => undefined);
  await kafka.close();
  await db.close();
  await dropDatabases(config, ['order']);
  rmSync(schemaDir, { recursive: true, force: true });
});

function happened(label: string, aggregateId = 'thing-1'): AnyEventEnvelope {
  return createEvent({ type: 'ThingHappened', source: 'order', aggregateType: 'Thing', aggregateId, data: { label } });
}

/** Produces an event on a topic directly (as a relay would), or any raw value. */
async function produce(topic: string, event: AnyEventEnvelope | { key: string; value: string }): Promise<void> {
  if ('value' in event) await kafka.publish(topic, [{ key: event.key, value: event.value, headers: {} }]);
  else await kafka.publish(topic, [{ key: event.aggregateId, value: JSON.stringify(event), headers: { id: event.id, type: event.type } }]);
}

/** Produces events in one publish (one record batch): a consumer fetches them together. */
async function produceTogether(topic: string, events: readonly (AnyEventEnvelope | { key: string; value: string })[]): Promise<void> {
  await kafka.publish(
    topic,
    events.map(
      (event): OutgoingMessage =>
        'value' in event
          ? { key: event.key, value: event.value, headers: {} }
          : { key: event.aggregateId, value: JSON.stringify(event), headers: { id: event.id, type: event.type } },
    ),
  );
}

async function appliedCount(eventId: string): Promise<number> {
  const [row] = await db.fork().execute<{ n: number }[]>('select count(*)::int as n from applied where event_id = ?', [eventId]);
  return Number(row.n);
}

/** The handler: records the event in `applied` (in the inbox transaction), then fails as `failures` says. */
function recordingHandler(failures: Map<string, number>, effects: string[]): EventHandler {
  return async (em, event, context) => {
    await em.execute('insert into applied (event_id, label) values (?, ?)', [event.id, (event.data as { label: string }).label]);
    context.afterCommit(async () => {
      // Runs after commit: another connection already sees the row.
      effects.push(`${event.id}:${await appliedCount(event.id)}`);
    });
    const left = failures.get(event.id) ?? 0;
    if (left > 0) {
      failures.set(event.id, left - 1);
      throw new Error(`handler fails (attempt ${context.attempt})`);
    }
  };
}

describe('inbox consumer', () => {
  const TOPIC = 'inbox.events.v1';
  const failures = new Map<string, number>();
  const effects: string[] = [];
  let consumer: RunningConsumer;

  before(async () => {
    consumer = await startConsumer({
      runtime: { config, log, db, kafka },
      consumer: 'test.inbox',
      topics: [TOPIC],
      registry,
      handlers: { ThingHappened: recordingHandler(failures, effects) },
      retry: { attempts: 3, baseMs: 5, maxMs: 20 },
      maxWaitTimeInMs: 100,
    });
  });
  after(() => consumer.stop());

  it('applies an event delivered twice once, and counts the duplicate', async () => {
    const event = happened('twice');
    await produce(TOPIC, event);
    await produce(TOPIC, event);
    const marker = happened('after');
    await produce(TOPIC, marker);
    await waitFor(async () => (await appliedCount(marker.id)) === 1, 'the marker applied', 20_000);
    assert.equal(await appliedCount(event.id), 1);
    assert.equal(consumer.metrics.duplicates, 1);
    assert.ok(effects.includes(`${event.id}:1`), 'the after-commit effect saw the committed row');
    assert.equal(effects.filter((e) => e.startsWith(event.id)).length, 1);
    const [inbox] = await db
      .fork()
      .execute<{ consumer: string; event_type: string }[]>('select consumer, event_type from inbox where event_id = ?', [event.id]);
    assert.deepEqual({ ...inbox }, { consumer: 'test.inbox', event_type: 'ThingHappened' });
  });

  it('dead-letters a message that fails its schema (or is not JSON) at once, and goes on with the next', async () => {
    const before = consumer.metrics;
    const invalid = createEvent({ type: 'ThingHappened', source: 'order', aggregateType: 'Thing', aggregateId: 'thing-1', data: { label: '' } });
    await produce(TOPIC, invalid);
    await produce(TOPIC, { key: 'thing-1', value: 'this is not json' });
    const next = happened('after-invalid');
    await produce(TOPIC, next);
    await waitFor(async () => (await appliedCount(next.id)) === 1, 'the next message applied', 20_000);
    assert.equal(await appliedCount(invalid.id), 0);
    assert.equal(consumer.metrics.deadLettered - before.deadLettered, 2);
    assert.equal(consumer.metrics.retried, before.retried, 'a schema failure is not retried');
    const letters = await kafka.readTopic(dlqTopic(TOPIC));
    const letter = letters.find((m) => m.headers.id === invalid.id);
    assert.ok(letter, 'the invalid event is in the DLQ');
    assert.match(letter.headers['dlq-error'], /ThingHappened v1 is invalid: \/data\/label must NOT have fewer than 1 characters/);
    assert.equal(letter.headers['dlq-original-topic'], kafka.topic(TOPIC));
    assert.equal(letter.headers['dlq-consumer'], 'test.inbox');
    assert.equal(letter.headers['dlq-attempts'], '1');
    assert.ok(!Number.isNaN(Date.parse(letter.headers['dlq-failed-at'])));
    assert.equal(letter.key, 'thing-1');
    assert.deepEqual(JSON.parse(letter.value!), invalid);
    const garbage = letters.find((m) => m.value === 'this is not json');
    assert.match(garbage!.headers['dlq-error'], /not JSON/);
  });

  it('retries a failing handler: applied once after 2 failures; dead-lettered after the last attempt, and the next message follows', async () => {
    const before = consumer.metrics;
    const flaky = happened('flaky', 'thing-2');
    const broken = happened('broken', 'thing-2');
    const next = happened('after-broken', 'thing-2');
    failures.set(flaky.id, 2);
    failures.set(broken.id, 1_000);
    // One publish: one record batch, so the consumer gets all three in one fetch and one transaction.
    await produceTogether(TOPIC, [flaky, broken, next]);
    await waitFor(async () => (await appliedCount(next.id)) === 1, 'the next message applied', 20_000);
    assert.equal(await appliedCount(flaky.id), 1, 'the failed attempts rolled back');
    assert.equal(await appliedCount(broken.id), 0);
    // The batch failed on flaky's first failure; then each on its own: flaky fails once more and
    // is retried, broken fails its 3 attempts (2 retries).
    assert.equal(consumer.metrics.batchesSplit - before.batchesSplit, 1);
    assert.equal(consumer.metrics.retried - before.retried, 1 + 2);
    assert.equal(consumer.metrics.deadLettered - before.deadLettered, 1);
    assert.deepEqual(
      effects.filter((e) => e.startsWith(flaky.id)),
      [`${flaky.id}:1`],
      'effects of failed attempts are dropped',
    );
    assert.equal(effects.filter((e) => e.startsWith(broken.id)).length, 0);
    const letter = (await kafka.readTopic(dlqTopic(TOPIC))).find((m) => m.headers.id === broken.id);
    assert.ok(letter);
    assert.equal(letter.headers['dlq-attempts'], '3');
    assert.match(letter.headers['dlq-error'], /handler fails \(attempt 3\)/);
  });

  it('applies a fetched batch in one transaction, in offset order, a duplicate inside it once', async () => {
    const before = consumer.metrics;
    const [a, b, c] = ['batch-a', 'batch-b', 'batch-c'].map((label) => happened(label, 'thing-3'));
    await produceTogether(TOPIC, [a, b, a, c]);
    await waitFor(async () => (await appliedCount(c.id)) === 1, 'the last one applied', 20_000);
    const rows = await db.fork().execute<{ event_id: string }[]>('select event_id from applied where event_id in (?, ?, ?) order by id', [a.id, b.id, c.id]);
    assert.deepEqual(
      rows.map((r) => r.event_id),
      [a.id, b.id, c.id],
      'applied once each, in offset order',
    );
    assert.equal(consumer.metrics.processed - before.processed, 3);
    assert.equal(consumer.metrics.duplicates - before.duplicates, 1);
    assert.equal(consumer.metrics.batches - before.batches, 1, 'one transaction');
    const [times] = await db
      .fork()
      .execute<{ n: number }[]>('select count(distinct processed_at)::int as n from inbox where event_id in (?, ?, ?)', [a.id, b.id, c.id]);
    assert.equal(Number(times.n), 1, 'one transaction: one now()');
  });

  it('a poison event in the middle of a batch goes to the DLQ; the events around it commit once', async () => {
    const before = consumer.metrics;
    const first = happened('around-1', 'thing-4');
    const poison = happened('poison', 'thing-4');
    const invalid = createEvent({ type: 'ThingHappened', source: 'order', aggregateType: 'Thing', aggregateId: 'thing-4', data: { label: '' } });
    const last = happened('around-2', 'thing-4');
    failures.set(poison.id, 1_000);
    await produceTogether(TOPIC, [first, poison, invalid, last]);
    await waitFor(() => consumer.metrics.deadLettered - before.deadLettered === 2, 'two dead letters', 20_000);
    await waitFor(async () => (await appliedCount(last.id)) === 1, 'the last one applied', 20_000);
    assert.equal(await appliedCount(first.id), 1);
    assert.equal(await appliedCount(poison.id), 0);
    assert.equal(await appliedCount(invalid.id), 0);
    assert.equal(consumer.metrics.batchesSplit - before.batchesSplit, 1);
    assert.deepEqual(
      effects.filter((e) => e.startsWith(first.id)),
      [`${first.id}:1`],
      "the first event's effect ran once, after its own commit",
    );
    const letters = await kafka.readTopic(dlqTopic(TOPIC));
    assert.equal(letters.find((m) => m.headers.id === poison.id)?.headers['dlq-attempts'], '3');
    assert.equal(letters.find((m) => m.headers.id === invalid.id)?.headers['dlq-attempts'], '1');
  });

  it('records an event of a type it has no handler (nor contract) for, and skips it', async () => {
    const before = consumer.metrics;
    const other = { ...happened('x'), type: 'SomethingElse' };
    await produce(TOPIC, other);
    const next = happened('after-unknown');
    await produce(TOPIC, next);
    await waitFor(async () => (await appliedCount(next.id)) === 1, 'the next message applied', 20_000);
    assert.equal(consumer.metrics.ignored - before.ignored, 1);
    assert.equal(consumer.metrics.deadLettered, before.deadLettered);
    const [row] = await db.fork().execute<{ event_type: string }[]>('select event_type from inbox where event_id = ?', [other.id]);
    assert.equal(row?.event_type, 'SomethingElse', 'recorded in the inbox');
  });
});

describe('inbox consumer with a preparer (remote work outside the transaction)', () => {
  const TOPIC = 'prepare.events.v1';
  const prepared: string[] = [];
  const seenInTransaction: string[] = [];
  let consumer: RunningConsumer;

  before(async () => {
    consumer = await startConsumer({
      runtime: { config, log, db, kafka },
      consumer: 'test.prepare',
      topics: [TOPIC],
      registry,
      preparers: {
        ThingHappened: async (event) => {
          // Outside any transaction: another connection's view, and no inbox row yet.
          const [row] = await db
            .fork()
            .execute<{ n: number }[]>('select count(*)::int as n from inbox where consumer = ? and event_id = ?', ['test.prepare', event.id]);
          prepared.push(event.id);
          return { label: (event.data as { label: string }).label.toUpperCase(), inboxRows: Number(row.n) };
        },
      },
      handlers: {
        ThingHappened: async (em, event, context) => {
          const result = context.prepared as { label: string; inboxRows: number };
          assert.equal(result.inboxRows, 0);
          seenInTransaction.push(event.id);
          await em.execute('insert into applied (event_id, label) values (?, ?)', [event.id, result.label]);
        },
      },
      maxWaitTimeInMs: 100,
    });
  });
  after(() => consumer.stop());

  it("hands the preparer's result to the handler, and prepares nothing for an event already applied", async () => {
    const one = happened('one', 'thing-p');
    const two = happened('two', 'thing-p');
    await produceTogether(TOPIC, [one, two]);
    await waitFor(async () => (await appliedCount(two.id)) === 1, 'both applied', 20_000);
    const rows = await db.fork().execute<{ label: string }[]>('select label from applied where event_id in (?, ?) order by id', [one.id, two.id]);
    assert.deepEqual(
      rows.map((r) => r.label),
      ['ONE', 'TWO'],
    );
    // Redelivered later (a replay): the inbox knows it, so the remote work is not done again.
    const marker = happened('marker', 'thing-p');
    await produceTogether(TOPIC, [one, marker]);
    await waitFor(async () => (await appliedCount(marker.id)) === 1, 'the marker applied', 20_000);
    assert.deepEqual(
      prepared.filter((id) => id === one.id),
      [one.id],
      'prepared once',
    );
    assert.equal(await appliedCount(one.id), 1);
    assert.equal(consumer.metrics.duplicates, 1);
  });
});

/** Runs `node scripts/dlq.ts ...args` against this test's prefix. */
function dlq(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'scripts', 'dlq.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, KAFKA_BROKERS: config.kafkaBrokers.join(','), KAFKA_TOPIC_PREFIX: config.kafkaTopicPrefix, LOG_LEVEL: 'error' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

describe('npm run dlq', () => {
  const TOPIC = 'cli.events.v1';
  let failing = true;
  let consumer: RunningConsumer;

  before(async () => {
    consumer = await startConsumer({
      runtime: { config, log, db, kafka },
      consumer: 'test.cli',
      topics: [TOPIC],
      registry,
      handlers: {
        ThingHappened: async (em, event) => {
          if (failing) throw new Error('downstream is down');
          await em.execute('insert into applied (event_id, label) values (?, ?)', [event.id, 'cli']);
        },
      },
      retry: { attempts: 2, baseMs: 5, maxMs: 10 },
      maxWaitTimeInMs: 100,
    });
  });
  after(() => consumer.stop());

  it('lists dead letters, replays one and then the rest to the original topic, and never the same one twice', async () => {
    const first = happened('first', 'thing-a');
    const second = happened('second', 'thing-b');
    await produce(TOPIC, first);
    await produce(TOPIC, second);
    await waitFor(() => consumer.metrics.deadLettered === 2, 'two dead letters', 20_000);
    failing = false;

    const listed = await dlq('list', TOPIC);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /OFFSET\s+KEY\s+TYPE\s+ATTEMPTS/);
    assert.match(listed.stdout, /thing-a\s+ThingHappened\s+2\s/);
    assert.match(listed.stdout, /Error: downstream is down/);
    const json = await dlq('list', `${TOPIC}.dlq`, '--json');
    const letters = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(letters.length, 2);
    const letterOfFirst = letters.find((l) => l.key === 'thing-a');
    assert.deepEqual(
      {
        type: letterOfFirst.type,
        attempts: letterOfFirst.attempts,
        consumer: letterOfFirst.consumer,
        replayed: letterOfFirst.replayed,
        originalTopic: letterOfFirst.originalTopic,
      },
      { type: 'ThingHappened', attempts: 2, consumer: 'test.cli', replayed: false, originalTopic: kafka.topic(TOPIC) },
    );

    // One dead letter by offset: republished to the original topic, where the consumer applies it.
    const one = await dlq('replay', TOPIC, '--offset', letterOfFirst.offset);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /replayed 1 dead letter \(1 to /);
    await waitFor(async () => (await appliedCount(first.id)) === 1, 'the replayed event applied', 20_000);
    const original = await kafka.readTopic(TOPIC);
    const copies = original.filter((m) => m.headers.id === first.id);
    assert.equal(copies.length, 2, 'the original topic holds the event and its replay');
    assert.deepEqual(
      { key: copies[1].key, value: copies[1].value, headers: copies[1].headers },
      { key: copies[0].key, value: copies[0].value, headers: copies[0].headers },
    );
    assert.equal((await dlq('replay', TOPIC, '--offset', letterOfFirst.offset)).stdout.trim(), 'replayed 0 dead letters; 1 already replayed');

    // The rest: only the second one is left.
    const rest = await dlq('replay', TOPIC);
    assert.equal(rest.code, 0, rest.stderr);
    // (The one replayed by offset is skipped; when it was the oldest, the recorded position already passed it.)
    assert.match(rest.stdout, /^replayed 1 dead letter \(1 to [^)]+\)(; 1 already replayed)?$/m);
    await waitFor(async () => (await appliedCount(second.id)) === 1, 'the second event applied', 20_000);
    const again = await dlq('replay', TOPIC);
    assert.equal(again.stdout.trim(), 'replayed 0 dead letters');
    assert.equal((await kafka.readTopic(TOPIC)).length, 4, 'nothing republished twice');
    const relisted = (await dlq('list', TOPIC, '--json')).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(
      relisted.map((l) => l.replayed),
      [true, true],
    );
    assert.equal(consumer.metrics.processed, 2);
  });

  it('prints usage and exits 2 for an unknown command or a missing topic argument; exits 1 for a topic without DLQ', async () => {
    const missing = await dlq('list');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing <topic>/);
    assert.match(missing.stderr, /usage: npm run dlq/);
    // The same entry point in-process (no process start-up to wait for).
    const lines: string[] = [];
    const io = { config, out: (line: string) => lines.push(line), err: (line: string) => lines.push(line) };
    assert.equal(await dlqMain(['purge', TOPIC], io), 2);
    assert.match(lines.join('\n'), /unknown command: purge/);
    assert.equal(await dlqMain(['replay', TOPIC, '--offset', 'x'], io), 2);
    assert.match(lines.join('\n'), /--offset needs a whole number/);
    assert.equal(await dlqMain(['list', 'absent.events.v1'], io), 1);
    assert.match(lines.join('\n'), /absent\.events\.v1\.dlq does not exist/);
  });
});
