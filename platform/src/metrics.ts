/**
 * Prometheus metrics with prom-client: one registry per process, served at `GET /metrics` by every
 * service (api and worker processes) and the gateway. Every series carries the process's `service`
 * and `role` labels, so one scrape configuration covers replicas and roles alike.
 *
 * What is counted on a hot path (HTTP requests, GraphQL operations) is recorded as it happens;
 * what lives elsewhere (the outbox backlog, consumer lag, orders by status) is read when Prometheus
 * scrapes, through `collect` callbacks, so an idle process does no work for its metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where every process serves its metrics. */
export const METRICS_PATH = '/metrics';

/** Latency buckets in seconds: from a cached read (a millisecond) to a request at its timeout. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** At most this many distinct operation names are labelled; the rest count as `(other)`. */
const MAX_OPERATION_NAMES = 200;
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** The registry of one process, with the metrics every process records. */
export interface ProcessMetrics {
  readonly registry: Registry;
  /** HTTP requests answered, by method, route (a known path or `other`) and status. */
  readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  /** GraphQL operations executed, by name, type and outcome (`ok` or `error`). */
  readonly graphqlOperations: Counter<'operation' | 'type' | 'outcome'>;
  readonly graphqlDuration: Histogram<'operation' | 'type'>;
  /** GraphQL errors sent to clients, by `extensions.code`. */
  readonly graphqlErrors: Counter<'code'>;
}

/**
 * A new registry with Node's process and runtime metrics (`process_*`, `nodejs_*`) and the HTTP and
 * GraphQL metrics, all labelled with `service` and `role`.
 */
export function createProcessMetrics(labels: { readonly service: string; readonly role: string }): ProcessMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: labels.service, role: labels.role });
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'swiftcart_http_requests_total',
      help: 'HTTP requests answered, by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'swiftcart_http_request_duration_seconds',
      help: 'Time from the request until the response was sent.',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    graphqlOperations: new Counter({
      name: 'swiftcart_graphql_operations_total',
      help: 'GraphQL operations executed, by operation name, type and outcome (ok, error).',
      labelNames: ['operation', 'type', 'outcome'],
      registers: [registry],
    }),
    graphqlDuration: new Histogram({
      name: 'swiftcart_graphql_operation_duration_seconds',
      help: 'Time to execute a GraphQL operation, from parsing to the response.',
      labelNames: ['operation', 'type'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    graphqlErrors: new Counter({
      name: 'swiftcart_graphql_errors_total',
      help: 'GraphQL errors sent to clients, by extensions.code.',
      labelNames: ['code'],
      registers: [registry],
    }),
  };
}

/** The route label of a path: the known ones as they are, anything else `other` (bounded labels). */
function routeOf(url: string | undefined, known: ReadonlySet<string>): string {
  const path = (url ?? '/').split('?', 1)[0];
  return known.has(path) ? path : 'other';
}

/**
 * Wraps an HTTP handler so that every response is counted and timed; `knownPaths` become route
 * labels, anything else is `other`.
 */
export function measureHttp(metrics: ProcessMetrics, knownPaths: readonly string[], handler: (req: IncomingMessage, res: ServerResponse) => unknown) {
  const known = new Set(knownPaths);
  return (req: IncomingMessage, res: ServerResponse): void => {
    const stop = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const route = routeOf(req.url, known);
      const method = req.method ?? 'GET';
      stop({ method, route });
      metrics.httpRequests.inc({ method, route, status: String(res.statusCode) });
    });
    void handler(req, res);
  };
}

/**
 * An Apollo Server plugin that counts and times every operation and counts the errors it sends,
 * by code. Operation names come from clients: only well-formed ones, and at most 200 distinct,
 * become labels.
 */
export function graphqlMetricsPlugin<TContext extends BaseContext>(metrics: ProcessMetrics): ApolloServerPlugin<TContext> {
  const names = new Set<string>();
  const nameOf = (name: string | null | undefined): string => {
    if (!name) return '(anonymous)';
    if (!OPERATION_NAME.test(name)) return '(other)';
    if (names.has(name)) return name;
    if (names.size >= MAX_OPERATION_NAMES) return '(other)';
    names.add(name);
    return name;
  };
  return {
    async requestDidStart() {
      const stop = metrics.graphqlDuration.startTimer();
      return {
        async willSendResponse({ response, operation, operationName }) {
          const labels = { operation: nameOf(operationName), type: operation?.operation ?? 'unknown' };
          stop(labels);
          const errors = response.body.kind === 'single' ? response.body.singleResult.errors : undefined;
          metrics.graphqlOperations.inc({ ...labels, outcome: errors?.length ? 'error' : 'ok' });
          for (const error of errors ?? []) metrics.graphqlErrors.inc({ code: String(error.extensions?.code ?? 'UNKNOWN') });
        },
      };
    },
  };
}

/** Serves the registry in Prometheus's text format (GET and HEAD; anything else falls through). */
export function metricsRoute(registry: Registry) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean | void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
}

/**
 * A gauge whose value is read at scrape time by `read`, which sets it through the gauge it is
 * given; a failing read (a database or broker out of reach) leaves the series out of that scrape
 * instead of failing the whole of `/metrics`.
 */
export function scrapedGauge<L extends string>(
  registry: Registry,
  options: { readonly name: string; readonly help: string; readonly labelNames?: readonly L[] },
  read: (gauge: Gauge<L>) => Promise<void>,
): Gauge<L> {
  return new Gauge<L>({
    name: options.name,
    help: options.help,
    labelNames: options.labelNames ?? [],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        await read(this);
      } catch {
        this.reset();
      }
    },
  });
}

/**
 * A counter whose value lives elsewhere (plain numbers a hot path increments), copied in at scrape
 * time: `read` reports each series' current total through `count`.
 */
export function scrapedCounter<L extends string>(
  registry: Registry,
  options: { readonly name: string; readonly help: string; readonly labelNames?: readonly L[] },
  read: (count: (total: number, labels?: Partial<Record<L, string>>) => void) => void,
): Counter<L> {
  return new Counter<L>({
    name: options.name,
    help: options.help,
    labelNames: options.labelNames ?? [],
    registers: [registry],
    collect() {
      this.reset();
      read((total, labels) => (labels ? this.inc(labels, total) : this.inc(total)));
    },
  });
}

/**
 * Registers `swiftcart_cache_lookups_total{cache, result}`: the hits and misses of cache-aside
 * caches (platform/src/cache.ts), read from their counters at each scrape.
 */
export function registerCacheMetrics(
  registry: Registry,
  caches: Readonly<Record<string, { readonly stats: { readonly hits: number; readonly misses: number } }>>,
): void {
  scrapedCounter(
    registry,
    { name: 'swiftcart_cache_lookups_total', help: 'Cache lookups by cache and result (hit, miss).', labelNames: ['cache', 'result'] },
    (count) => {
      for (const [cache, { stats }] of Object.entries(caches)) {
        count(stats.hits, { cache, result: 'hit' });
        count(stats.misses, { cache, result: 'miss' });
      }
    },
  );
}

/**
 * Registers `swiftcart_circuit_breaker_state{breaker, state}`: 1 for the state `current()` returns
 * (closed, half-open or open), 0 for the others, so an alert can ask for `state="open" == 1`.
 */
export function registerBreakerMetrics(registry: Registry, breaker: string, current: () => 'closed' | 'half-open' | 'open'): void {
  scrapedGauge(
    registry,
    {
      name: 'swiftcart_circuit_breaker_state',
      help: "A circuit breaker's state: 1 for the current one (closed, half-open, open), 0 for the others.",
      labelNames: ['breaker', 'state'],
    },
    async (gauge) => {
      const now = current();
      for (const state of ['closed', 'half-open', 'open'] as const) gauge.set({ breaker, state }, state === now ? 1 : 0);
    },
  );
}
