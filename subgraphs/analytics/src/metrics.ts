/**
 * The analytics service's own metrics (platform metrics.ts): where workers run, how long events
 * take from `occurredAt` to being counted, and, read from the database at each scrape, the CURRENT
 * generation, whether a rebuild is under way, and how many buckets it holds. (How many events the
 * consumer counted is the platform's `swiftcart_consumer_events_total{consumer="analytics.sales"}`.)
 */
import { Histogram, type Registry, type ServiceRuntime, runsWorkers, scrapedGauge } from '@swiftcart/platform';
import type { CountingInstruments } from './consumer.ts';

/** Buckets of the counting lag, seconds: from well under the goal (1 s) to an outage. */
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Registers the analytics metrics and connects `instruments` (the live consumer's) to them. */
export function registerAnalyticsMetrics(runtime: ServiceRuntime, registry: Registry, instruments: CountingInstruments): void {
  if (!runsWorkers(runtime.config.serviceRole)) return;
  const lag = new Histogram({
    name: 'swiftcart_analytics_count_lag_seconds',
    help: "Seconds from an order or payment event's occurredAt until it was counted into the CURRENT sales figures (outbox, Kafka and the analytics.sales consumer).",
    buckets: LAG_BUCKETS,
    registers: [registry],
  });
  instruments.observeLag = (seconds) => {
    for (const s of seconds) lag.observe(s);
  };
  // The gauges come from one query per scrape.
  let read: { at: number; figures: Promise<{ generation: number; rebuilding: number; buckets: number }> } | null = null;
  const figures = () => {
    if (!read || Date.now() - read.at > 1_000) {
      read = {
        at: Date.now(),
        figures: runtime.db
          .fork()
          .execute<{ generation: number; rebuilding: number; buckets: number }[]>(
            `select g.id as generation,
                    (select count(*)::int from analytics_generation where state in ('BUILDING', 'FOLLOWING')) as rebuilding,
                    (select count(*)::int from sales_bucket b where b.generation = g.id) as buckets
             from analytics_generation g where g.state = 'CURRENT'`,
          )
          .then(([row]) => ({ generation: Number(row.generation), rebuilding: Number(row.rebuilding), buckets: Number(row.buckets) })),
      };
    }
    return read.figures;
  };
  scrapedGauge(registry, { name: 'swiftcart_analytics_generation', help: 'The generation of the sales figures that queries read (ADR 0023).' }, async (gauge) =>
    gauge.set((await figures()).generation),
  );
  scrapedGauge(
    registry,
    { name: 'swiftcart_analytics_rebuilding', help: 'Whether a rebuild of the sales figures is under way or was left unfinished (1) or not (0).' },
    async (gauge) => gauge.set((await figures()).rebuilding),
  );
  scrapedGauge(
    registry,
    { name: 'swiftcart_analytics_buckets', help: 'Hour and day buckets (every currency) in the CURRENT generation of the sales figures.' },
    async (gauge) => gauge.set((await figures()).buckets),
  );
}
