/**
 * The drain barrier (test/support/drain.ts) against real Kafka and PostgreSQL: it does not return
 * while a consumer group is behind or an outbox row waits, and it does return once they are done;
 * groups nobody runs any more, and groups of other test runs, do not hold it up.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { type Config, type Database, type KafkaClient, Migration, createKafka, createLogger, openDatabase, outboxMigrations } from '@swiftcart/platform';
import { dropDatabases, ensureDatabases } from '../scripts/infra.ts';
import { type DrainScope, drain } from './support/drain.ts';
import { isolatedConfig } from './support/stack.ts';
import { waitFor } from './support/wait.ts';

const log = createLogger('drain-test', process.env.TEST_LOG_LEVEL ?? 'fatal');
const TOPIC = 'drain.events.v1';

const Thing = defineEntity({ name: 'Thing', tableName: 'thing', properties: { id: p.string().primary() } });
class CreateThing extends Migration {
  override up(): void {
    this.addSql('create table thing (id text primary key)');
  }
}

/** A gate a handler waits at until the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** Runs `barrier` and records when it settles, so the test can ask "not yet?" without a clock. */
function watch(barrier: Promise<void>): { settled: () => boolean; done: Promise<void> } {
  let settled = false;
  const done = barrier.finally(() => {
    settled = true;
  });
  done.catch(() => undefined);
  return { settled: () => settled, done };
}

describe('drain barrier', () => {
  let config: Config;
  let kafka: KafkaClient;
  let db: Database;
  let scope: DrainScope;

  before(async () => {
    config = isolatedConfig();
    await ensureDatabases(config, ['product']);
    db = await openDatabase({
      config,
      service: 'product',
      entities: [Thing],
      migrations: [{ name: '0001_thing', class: CreateThing }, ...outboxMigrations],
      log,
    });
    await db.migrate();
    kafka = createKafka(config, log, 'drain-test');
    await kafka.ensureTopics([{ name: TOPIC, partitions: 2 }]);
    scope = { config, outboxes: { product: () => db.fork() } };
  });
  after(async () => {
    await kafka?.deleteTopics([TOPIC]).catch(() => undefined);
    await kafka?.close();
    await db?.close();
    await dropDatabases(config, ['product']);
  });

  it('returns at once when nothing is waiting', async () => {
    await drain(scope, { timeoutMs: 10_000 });
  });

  it('does not return while a consumer is behind; returns once it has handled and committed everything', async () => {
    const handled: string[] = [];
    const release = gate();
    let entered = false;
    const subscription = await kafka.consume(
      `behind.${randomUUID()}`,
      [TOPIC],
      async (message) => {
        if (message.value === 'slow') {
          entered = true;
          await release.wait;
        }
        handled.push(message.value!);
      },
      { maxWaitTimeInMs: 100 },
    );
    try {
      await kafka.publish(TOPIC, [
        { key: 'a', value: 'fast' },
        { key: 'a', value: 'slow' },
        { key: 'a', value: 'after' },
      ]);
      const checks: (readonly string[])[] = [];
      const barrier = watch(drain(scope, { timeoutMs: 30_000, intervalMs: 20, onCheck: (busy) => checks.push(busy) }));
      await waitFor(() => entered, 'the handler to hold the second message');
      // The barrier has looked several times since the handler took the message, and found the group behind each time.
      const from = checks.length;
      await waitFor(() => checks.length >= from + 3, 'three more checks by the barrier');
      assert.equal(barrier.settled(), false, 'the barrier returned while a consumer was behind');
      for (const busy of checks.slice(from))
        assert.ok(
          busy.some((b) => /^group behind\.\S+ is \d+ behind on drain\.events\.v1\[\d\]$/.test(b)),
          JSON.stringify(busy),
        );
      release.open();
      await barrier.done;
      assert.deepEqual(handled, ['fast', 'slow', 'after'], 'every message was handled before the barrier returned');
      assert.deepEqual(checks.at(-1), []);
    } finally {
      release.open();
      await subscription.stop();
    }
  });

  it('does not return while an outbox row waits for its relay; returns once it is published', async () => {
    const id = randomUUID();
    await db.fork().execute(
      `insert into outbox (id, aggregatetype, aggregateid, type, topic, payload, headers)
      values (?, 'Thing', 'thing-1', 'ThingHappened', ?, '{}'::jsonb, '{}'::jsonb)`,
      [id, TOPIC],
    );
    const checks: (readonly string[])[] = [];
    const barrier = watch(drain(scope, { timeoutMs: 30_000, intervalMs: 20, onCheck: (busy) => checks.push(busy) }));
    await waitFor(() => checks.length >= 3, 'three checks by the barrier');
    assert.equal(barrier.settled(), false, 'the barrier returned while an outbox row waited');
    assert.ok(
      checks.every((busy) => busy.includes("product's outbox has 1 rows waiting for its relay")),
      JSON.stringify(checks),
    );
    // What the relay does once Kafka has the event.
    await db.fork().execute('update outbox set published_at = now() where id = ?', [id]);
    await barrier.done;
  });

  it('fails after its timeout naming what was still busy', async () => {
    const id = randomUUID();
    await db.fork().execute(
      `insert into outbox (id, aggregatetype, aggregateid, type, topic, payload, headers)
      values (?, 'Thing', 'thing-2', 'ThingHappened', ?, '{}'::jsonb, '{}'::jsonb)`,
      [id, TOPIC],
    );
    try {
      await assert.rejects(
        drain(scope, { timeoutMs: 300 }),
        /timed out after 300 ms waiting for the outboxes to be empty.*product's outbox has 1 rows waiting/,
      );
    } finally {
      await db.fork().execute('update outbox set published_at = now() where id = ?', [id]);
    }
  });

  it('ignores a group nobody runs any more, and the groups of other prefixes', async () => {
    // A stopped consumer that is behind: it has left its group, which cannot move.
    const stopped = await kafka.consume(`stopped.${randomUUID()}`, [TOPIC], async () => {}, { maxWaitTimeInMs: 100 });
    await drain(scope, { timeoutMs: 30_000 });
    await stopped.stop();
    // Another run's consumer (another prefix), held behind on the same broker.
    const other = isolatedConfig();
    const otherKafka = createKafka(other, log, 'drain-test-other');
    const release = gate();
    let entered = false;
    try {
      await otherKafka.ensureTopics([{ name: TOPIC, partitions: 1 }]);
      const held = await otherKafka.consume(
        'held',
        [TOPIC],
        async () => {
          entered = true;
          await release.wait;
        },
        { maxWaitTimeInMs: 100 },
      );
      await otherKafka.publish(TOPIC, [{ key: 'x', value: 'held' }]);
      await waitFor(() => entered, "the other run's handler to hold its message");
      await kafka.publish(TOPIC, [{ key: 'b', value: 'nobody reads this' }]);
      await drain(scope, { timeoutMs: 30_000 });
      release.open();
      await held.stop();
    } finally {
      release.open();
      await otherKafka.deleteTopics([TOPIC]).catch(() => undefined);
      await otherKafka.close();
    }
  });
});
