/**
 * The messaging metrics of a worker process (a service's relay and consumers): the outbox backlog,
 * its oldest unpublished row and how long events wait to be published; per consumer, the events
 * handled by outcome and the lag per topic and partition. Read at scrape time where they live (the
 * database, the broker, the consumers' counters); see metrics.ts.
 */
import type { Database } from './database.ts';
import type { RunningConsumer } from './inbox.ts';
import type { KafkaClient } from './kafka.ts';
import { outboxWaiting } from './outbox.ts';
import { Histogram, LATENCY_BUCKETS, type Registry, scrapedCounter, scrapedGauge } from './metrics.ts';

/** What a worker process runs, as its metrics need it. */
export interface MessagingMetricsOptions {
  readonly registry: Registry;
  readonly db: Database;
  readonly kafka: KafkaClient;
  /** Whether this service has an outbox relay. */
  readonly publishes: boolean;
  /** Its consumers: their names (group ids) and topics, and the running ones' counters. */
  readonly consumers: () => readonly { readonly spec: { readonly consumer: string; readonly topics: readonly string[] }; readonly running?: RunningConsumer }[];
}

/** The outcomes `swiftcart_consumer_events_total` counts, and the consumer counter each is read from. */
const OUTCOMES = { processed: 'processed', duplicate: 'duplicates', ignored: 'ignored', retried: 'retried', dead_lettered: 'deadLettered' } as const;

/**
 * Registers the messaging metrics; returns what the relay calls with each published batch's waits
 * (`OutboxRelayOptions.onPublished`).
 */
export function registerMessagingMetrics(options: MessagingMetricsOptions): (waitedSeconds: readonly number[]) => void {
  const { registry, db, kafka } = options;
  const publishWait = new Histogram({
    name: 'swiftcart_outbox_publish_wait_seconds',
    help: 'How long an event waited in the outbox, from its commit until the relay published it.',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  if (options.publishes) {
    // Both gauges come from one query per scrape: the second collect reuses the first one's read.
    let read: { at: number; waiting: Promise<{ rows: number; oldestSeconds: number }> } | null = null;
    const waiting = () => {
      if (!read || Date.now() - read.at > 1_000) read = { at: Date.now(), waiting: outboxWaiting(db.fork()) };
      return read.waiting;
    };
    scrapedGauge(registry, { name: 'swiftcart_outbox_backlog', help: 'Outbox rows not published yet (events and live changes).' }, async (gauge) =>
      gauge.set((await waiting()).rows),
    );
    scrapedGauge(
      registry,
      { name: 'swiftcart_outbox_oldest_unpublished_seconds', help: 'Age of the oldest outbox row not published yet; 0 when there is none.' },
      async (gauge) => gauge.set((await waiting()).oldestSeconds),
    );
  }
  scrapedCounter(
    registry,
    {
      name: 'swiftcart_consumer_events_total',
      help: 'Events a consumer was handed, by outcome: processed, duplicate (already in the inbox), ignored (no handler), retried (attempts after the first), dead_lettered.',
      labelNames: ['consumer', 'outcome'],
    },
    (count) => {
      for (const { spec, running } of options.consumers()) {
        for (const [outcome, key] of Object.entries(OUTCOMES)) count(running?.metrics[key] ?? 0, { consumer: spec.consumer, outcome });
      }
    },
  );
  scrapedGauge(
    registry,
    {
      name: 'swiftcart_consumer_lag_messages',
      help: 'Messages on a partition that the consumer group has not committed yet (high watermark minus committed offset).',
      labelNames: ['consumer', 'topic', 'partition'],
    },
    async (gauge) => {
      for (const { spec } of options.consumers()) {
        for (const topic of spec.topics) {
          const [ends, committed] = await Promise.all([kafka.topicOffsets(topic), kafka.groupOffsets(spec.consumer, topic)]);
          const at = new Map(committed.map((c) => [c.partition, c.offset]));
          for (const end of ends) {
            const offset = at.get(end.partition);
            // Nothing committed yet: everything from the low watermark on is still to be read.
            const from = offset === null || offset === undefined ? BigInt(end.low) : BigInt(offset);
            const lag = BigInt(end.high) - from;
            gauge.set({ consumer: spec.consumer, topic, partition: String(end.partition) }, Number(lag > 0n ? lag : 0n));
          }
        }
      }
    },
  );
  return (waited) => {
    for (const seconds of waited) publishWait.observe(Math.max(0, seconds));
  };
}
