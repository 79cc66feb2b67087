/**
 * `npm run bench -- analytics [saga options]`: how far the sales figures trail the saga at its
 * highest rate. Runs the saga bench (bench/saga.ts, closed loop by default: as fast as the API
 * answers; any of its options, `--search` included, are passed on) against the running `npm start`
 * stack, and meanwhile:
 * - samples the `analytics.sales` consumer group's lag (high watermarks minus committed offsets of
 *   order.events.v1 and payment.events.v1) every 200 ms;
 * - afterwards reads, for every event the live consumer counted during the run, how long it took
 *   from the event's `occurredAt` (set in the producing transaction) to being counted
 *   (`analytics_event.counted_at`, the clock of the counting statement, a few statements before
 *   the commit): the producer's outbox relay, Kafka and the consumer together; and, joined with
 *   the order and payment outboxes by event id, the part after the relay published it (Kafka and
 *   the analytics consumer alone).
 * Goal: p99 under 1 s. Writes bench/results/analytics-<timestamp>.json and analytics-latest.json.
 */
import { readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadConfig, serviceDatabaseUrl } from '../platform/src/config.ts';
import { createKafka } from '../platform/src/kafka.ts';
import { createLogger } from '../platform/src/logger.ts';
import { sleep } from '../platform/src/resilience.ts';
import { SALES_CONSUMER } from '../subgraphs/analytics/src/consumer.ts';
import { NotReady, RESULTS_DIR, distribution, fixed, getJson, positiveNumber, table, writeResults } from './lib.ts';
import { main as runSaga } from './saga.ts';

export const USAGE = `usage: npm run bench -- analytics [--settle-timeout 60] [saga options]

  --settle-timeout  seconds to wait, after the saga bench ends, for the analytics consumer to count
                    everything (default 60)
  saga options      passed to the saga bench that drives the load (npm run bench -- saga --help);
                    default: its closed loop, 32 customers for 30 s

Needs the whole stack running (npm start), the analytics service included, and reads the analytics
database (DATABASE_URL, DB_PREFIX). Goal: events counted within 1 s of occurredAt at p99.`;

/** The topics the analytics consumer reads. */
const TOPICS = ['order.events.v1', 'payment.events.v1'];
const SAMPLE_MS = 200;
const GOAL_P99_S = 1;

function parseOptions(args: readonly string[]): { settleTimeoutS: number; sagaArgs: string[] } {
  let settleTimeoutS = 60;
  const sagaArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--settle-timeout' || arg.startsWith('--settle-timeout=')) {
      const raw = arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[++i];
      settleTimeoutS = positiveNumber('--settle-timeout', raw, { max: 3600 });
    } else sagaArgs.push(arg);
  }
  return { settleTimeoutS, sagaArgs };
}

export async function main(args: readonly string[]): Promise<number> {
  const { settleTimeoutS, sagaArgs } = parseOptions(args);
  const config = loadConfig();
  const ready = await getJson(`http://127.0.0.1:${config.servicePorts.analytics}/readyz`, 5_000).catch((error: Error) => error);
  if (ready instanceof Error || ready.status !== 200) {
    const why = ready instanceof Error ? ready.message : `readyz ${ready.status}: ${JSON.stringify(ready.body)}`;
    console.error(`bench analytics: the analytics service is not ready on port ${config.servicePorts.analytics} (${why}); start the stack with \`npm start\``);
    return 1;
  }
  const db = new pg.Client({ connectionString: serviceDatabaseUrl(config, 'analytics') });
  await db.connect();
  const kafka = createKafka(config, createLogger('bench-analytics', 'fatal'), 'swiftcart-bench-analytics');
  try {
    const lagNow = async () => {
      let lag = 0n;
      for (const topic of TOPICS) {
        const [ends, committed] = await Promise.all([kafka.topicOffsets(topic), kafka.groupOffsets(SALES_CONSUMER, topic)]);
        const at = new Map(committed.map((c) => [c.partition, c.offset]));
        for (const end of ends) {
          const offset = at.get(end.partition);
          const from = offset === null || offset === undefined ? BigInt(end.low) : BigInt(offset);
          if (BigInt(end.high) > from) lag += BigInt(end.high) - from;
        }
      }
      return Number(lag);
    };

    const startedAt = new Date();
    const samples: { at: number; lag: number }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const at = Date.now();
        samples.push({ at, lag: await lagNow().catch(() => Number.NaN) });
        await sleep(Math.max(0, SAMPLE_MS - (Date.now() - at)));
      }
    })();
    console.log(`bench analytics: the saga bench drives the load (${sagaArgs.length ? sagaArgs.join(' ') : 'its defaults'}); sampling ${SALES_CONSUMER}'s lag`);
    console.log('');
    let sagaCode: number;
    try {
      sagaCode = await runSaga(sagaArgs);
    } finally {
      sampling = false;
      await sampler;
    }
    console.log('');
    const settleStart = Date.now();
    let settled = false;
    while (Date.now() - settleStart < settleTimeoutS * 1000) {
      if ((await lagNow()) === 0) {
        settled = true;
        break;
      }
      await sleep(SAMPLE_MS);
    }

    const { rows } = await db.query<{ id: string; type: string; lag: string; counted: Date }>(
      `select event_id as id, event_type as type, extract(epoch from counted_at - occurred_at) as lag, counted_at as counted
       from analytics_event
       where generation = (select id from analytics_generation where state = 'CURRENT') and counted_at >= $1
       order by counted_at`,
      [startedAt],
    );
    // The producers' outbox rows of the same events: when the relay published each.
    const published = new Map<string, number>();
    for (const producer of ['order', 'payment'] as const) {
      const client = new pg.Client({ connectionString: serviceDatabaseUrl(config, producer) });
      try {
        await client.connect();
        const out = await client.query<{ id: string; published_at: Date | null }>('select id, published_at from outbox where created_at >= $1', [
          new Date(startedAt.getTime() - 60_000),
        ]);
        for (const r of out.rows) if (r.published_at) published.set(r.id, r.published_at.getTime());
      } catch (error) {
        console.log(`note: the ${producer} outbox is not readable (${(error as Error).message}); no published → counted figure for its events`);
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    const afterPublish = rows.flatMap((r) => {
      const at = published.get(r.id);
      return at === undefined ? [] : [(r.counted.getTime() - at) / 1000];
    });
    // The saga bench's own result of this run (its -latest.json is overwritten by the next run).
    const sagaFiles = await Promise.all(
      (await readdir(RESULTS_DIR))
        .filter((name) => /^saga-\d.*\.json$/.test(name))
        .map(async (name) => ({ name, at: (await stat(path.join(RESULTS_DIR, name))).mtimeMs })),
    );
    const sagaResult = sagaFiles.filter((f) => f.at >= startedAt.getTime()).sort((a, b) => b.at - a.at)[0]?.name ?? null;
    const lags = rows.map((r) => Number(r.lag));
    const byType: Record<string, number> = {};
    for (const row of rows) byType[row.type] = (byType[row.type] ?? 0) + 1;
    const countedSpanS = rows.length > 1 ? (rows[rows.length - 1].counted.getTime() - rows[0].counted.getTime()) / 1000 : Number.NaN;
    const eventLag = distribution(lags);
    const publishedLag = distribution(afterPublish);
    const groupLag = distribution(samples.map((s) => s.lag).filter(Number.isFinite));
    const result = {
      at: startedAt.toISOString(),
      host: { cpus: os.cpus().length, loadAverage: os.loadavg() },
      saga: { args: sagaArgs, exitCode: sagaCode, results: sagaResult && `bench/results/${sagaResult}` },
      counted: { events: rows.length, byType, eventsPerSecond: rows.length / countedSpanS, settled, settleSeconds: (Date.now() - settleStart) / 1000 },
      occurredToCountedSeconds: eventLag,
      publishedToCountedSeconds: publishedLag,
      consumerLagMessages: { ...groupLag, samples: samples.length, everyMs: SAMPLE_MS },
      goal: { p99Seconds: GOAL_P99_S, met: eventLag.p99 < GOAL_P99_S, metAfterPublish: publishedLag.p99 < GOAL_P99_S },
    };

    console.log(
      `analytics: ${rows.length} events counted during the run (${Object.entries(byType)
        .map(([t, n]) => `${n} ${t}`)
        .join(', ')}), ${fixed(result.counted.eventsPerSecond)} events/s`,
    );
    console.log(
      table([
        ['', 'p50', 'p90', 'p99', 'max'],
        ['occurredAt → counted (s)', fixed(eventLag.p50, 3), fixed(eventLag.p90, 3), fixed(eventLag.p99, 3), fixed(eventLag.max, 3)],
        ['published to Kafka → counted (s)', fixed(publishedLag.p50, 3), fixed(publishedLag.p90, 3), fixed(publishedLag.p99, 3), fixed(publishedLag.max, 3)],
        [`${SALES_CONSUMER} lag (messages)`, fixed(groupLag.p50, 0), fixed(groupLag.p90, 0), fixed(groupLag.p99, 0), fixed(groupLag.max, 0)],
      ]),
    );
    console.log(`  (occurredAt → counted includes the producers' outbox relays; published → counted is Kafka and ${SALES_CONSUMER} alone)`);
    const verdict = (met: boolean, p99: number) => `${met ? 'met' : 'NOT met'} (${fixed(p99, 3)} s)`;
    console.log(
      `goal p99 under ${GOAL_P99_S} s: occurredAt → counted ${verdict(result.goal.met, eventLag.p99)}, published → counted ${verdict(result.goal.metAfterPublish, publishedLag.p99)}` +
        (settled ? '' : `; the consumer had not caught up ${settleTimeoutS} s after the saga bench ended`),
    );
    const files = await writeResults('analytics', result);
    console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    if (rows.length === 0) throw new NotReady('no event was counted during the run');
    return sagaCode !== 0 || !settled ? 1 : 0;
  } catch (error) {
    if (error instanceof NotReady) {
      console.error(`bench analytics: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    await kafka.close();
    await db.end();
  }
}
