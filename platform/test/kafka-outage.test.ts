/**
 * The platform's producer against a broker killed (SIGKILL) while it publishes: sends fail while
 * the broker is down and succeed again once it is back, and every message is on the topic, in
 * order, at least once. A scratch broker of the test's own (test/support/kafka-broker.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createKafka, createLogger, sleep } from '../src/index.ts';
import { TestKafkaBroker } from '../../test/support/kafka-broker.ts';
import { isolatedConfig } from '../../test/support/stack.ts';
import { waitFor } from '../../test/support/participants.ts';

const log = createLogger('platform-test', 'fatal');

describe('publishing through a Kafka outage', { timeout: 180_000 }, () => {
  it('recovers after the broker is killed mid-send: every message lands, in order, at least once', async () => {
    await using broker = await TestKafkaBroker.start();
    const config = { ...isolatedConfig(), kafkaBrokers: [broker.broker] };
    const kafka = createKafka(config, log, 'outage-test');
    try {
      const topic = 'outage.test.v1';
      await kafka.ensureTopics([{ name: topic, partitions: 6 }]);

      // Like the outbox relay: a growing backlog, sent oldest first in batches; a failed send
      // leaves its batch in the backlog, so the retry carries it again, often with more behind it.
      let next = 0;
      let sent = 0;
      let failures = 0;
      const backlog: number[] = [];
      let publishing = true;
      const relay = (async () => {
        while (publishing || backlog.length > 0) {
          if (publishing) for (let i = 0; i < 1 + (next % 4); i++) backlog.push(next++);
          const batch = backlog.slice(0, 50);
          try {
            await kafka.publish(
              topic,
              batch.map((n) => ({ key: `k${n % 12}`, value: String(n) })),
            );
            backlog.splice(0, batch.length);
            sent += batch.length;
          } catch {
            failures++;
            // The relay's backoff after a failed publish, shortened.
            await sleep(100);
          }
        }
      })();

      await waitFor(() => sent >= 500, 'messages to flow before the outage', 30_000);
      await broker.kill();
      await broker.restart();
      const sentAtRestart = sent;
      await waitFor(() => sent >= sentAtRestart + 500, 'sends to succeed again after the restart', 60_000);
      publishing = false;
      await relay;

      assert.ok(failures > 0, 'sends failed while the broker was down');
      const messages = await kafka.readTopic(topic);
      for (let k = 0; k < 12; k++) {
        const values = messages.filter((m) => m.key === `k${k}`).map((m) => Number(m.value));
        const seen = new Set<number>();
        const firsts = values.filter((n) => !seen.has(n) && seen.add(n));
        const expected = Array.from({ length: next }, (_, i) => i).filter((n) => n % 12 === k);
        assert.deepEqual(firsts, expected, `key k${k}: every message, first occurrences in order`);
      }
    } finally {
      await kafka.close();
    }
  });
});
