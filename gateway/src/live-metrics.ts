/**
 * The gateway's live-update figures, read by tests and the benchmark from `GET /metrics`
 * (Prometheus text format, through the process's prom-client registry) or directly from
 * {@link LiveMetrics.snapshot}. The hot path increments plain numbers; the registry reads them
 * when Prometheus scrapes.
 */
import { type Registry, scrapedCounter, scrapedGauge } from '@swiftcart/platform/metrics';

/** Metric names as exported; gauges are current values, `_total` counters only grow. */
export const LIVE_METRIC_NAMES = {
  connections: 'swiftcart_gateway_live_connections',
  subscriptions: 'swiftcart_gateway_live_subscriptions',
  upstreamSubscriptions: 'swiftcart_gateway_live_upstream_subscriptions',
  eventsReceived: 'swiftcart_gateway_live_events_received_total',
  restExecutions: 'swiftcart_gateway_live_rest_executions_total',
  messagesSent: 'swiftcart_gateway_live_messages_sent_total',
  slowClientsClosed: 'swiftcart_gateway_live_slow_clients_closed_total',
  upstreamReconnects: 'swiftcart_gateway_live_upstream_reconnects_total',
} as const;

const HELP: Record<keyof typeof LIVE_METRIC_NAMES, string> = {
  connections: 'Open graphql-ws connections from clients.',
  subscriptions: 'Active client subscriptions.',
  upstreamSubscriptions: 'Active subscriptions from the gateway to subgraphs, each shared by identical client subscriptions.',
  eventsReceived: 'Events received from upstream subscriptions.',
  restExecutions: "Executions of a subscription plan's rest (fetches from other subgraphs), one per event per distinct operation and variables.",
  messagesSent: 'Subscription messages (next) sent to clients.',
  slowClientsClosed: 'Client connections closed because their queue of undelivered messages was full.',
  upstreamReconnects: 'Reconnections of the gateway to a subgraph that serves subscriptions.',
};

const GAUGES = new Set<keyof typeof LIVE_METRIC_NAMES>(['connections', 'subscriptions', 'upstreamSubscriptions']);

/** A point-in-time copy of every live-update figure. */
export type LiveMetricsSnapshot = { -readonly [K in keyof typeof LIVE_METRIC_NAMES]: number };

/** Counters and gauges of the live-update path; plain numbers, no locking needed on one thread. */
export class LiveMetrics {
  readonly values: LiveMetricsSnapshot = {
    connections: 0,
    subscriptions: 0,
    upstreamSubscriptions: 0,
    eventsReceived: 0,
    restExecutions: 0,
    messagesSent: 0,
    slowClientsClosed: 0,
    upstreamReconnects: 0,
  };

  /** A copy of the current figures. */
  snapshot(): LiveMetricsSnapshot {
    return { ...this.values };
  }

  /** Registers every figure in `registry`, read from these counters at each scrape. */
  register(registry: Registry): void {
    for (const key of Object.keys(LIVE_METRIC_NAMES) as (keyof typeof LIVE_METRIC_NAMES)[]) {
      const options = { name: LIVE_METRIC_NAMES[key], help: HELP[key] };
      if (GAUGES.has(key)) scrapedGauge(registry, options, async (gauge) => gauge.set(this.values[key]));
      else scrapedCounter(registry, options, (count) => count(this.values[key]));
    }
  }
}

/**
 * Parses Prometheus text into metric name → value, summed over the series of each name (their
 * labels dropped); the benchmark and tests read `/metrics` with it.
 */
export function parsePrometheus(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const series = line.slice(0, space);
    const brace = series.indexOf('{');
    const name = brace === -1 ? series : series.slice(0, brace);
    values.set(name, (values.get(name) ?? 0) + Number(line.slice(space + 1)));
  }
  return values;
}
