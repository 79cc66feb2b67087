/**
 * `/metrics` on every process (platform/src/metrics.ts): after an order went through the saga, each
 * service and the gateway report it in Prometheus's text format, with their `service` label, the
 * process and runtime defaults, HTTP and GraphQL figures, the outbox, the consumers and their lag;
 * and every metric the alert rules and the Grafana dashboard query is one some process serves.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT, SERVICE_NAMES, type ServiceName } from '@swiftcart/platform';
import type { TestStack } from '../support/stack.ts';
import { placeOrder, seedSaga, startSagaStack, systemOf, waitFor, waitForStatus } from '../support/saga.ts';

/** One sample of a scrape: its metric name, labels and value. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/**
 * The names a scrape declares series under (its `# TYPE` lines), declared or not yet observed: a
 * histogram's as its `_bucket`, `_sum` and `_count` series, a summary's as itself, `_sum` and
 * `_count`, anything else as it is named.
 */
function declared(text: string): string[] {
  return [...text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)].flatMap(([, name, type]) => {
    if (type === 'histogram') return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
    if (type === 'summary') return [name, `${name}_sum`, `${name}_count`];
    return [name];
  });
}

/** The samples of `name` whose labels include `labels`. */
function find(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

const sum = (samples: readonly Sample[]) => samples.reduce((total, s) => total + s.value, 0);

describe('/metrics of every process after an order', () => {
  let stack: TestStack;
  const metricsText = async (url: string) => {
    const response = await fetch(`${new URL(url).origin}/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    return response.text();
  };
  const scrape = async (url: string) => parse(await metricsText(url));
  const service = (name: ServiceName) => scrape(stack.services[name]!.url);

  before(async () => {
    stack = await startSagaStack({}, SERVICE_NAMES);
    const system = systemOf(stack);
    await seedSaga(system, [{ sku: 'METRICS-1', onHand: 10 }]);
    const customer = await stack.token('metrics-customer', ['customer']);
    const order = await placeOrder(system, customer, [{ sku: 'METRICS-1', quantity: 2 }], 'tok_visa');
    await waitForStatus(system, customer, order.id, ['CONFIRMED'], 30_000);
  });
  after(async () => {
    await stack?.close();
  });

  test('the gateway counts the placeOrder mutation, its HTTP requests and its live figures, with process defaults', async () => {
    const samples = await scrape(stack.gateway!.url);
    assert.equal(sum(find(samples, 'swiftcart_graphql_operations_total', { operation: 'PlaceOrder', type: 'mutation', outcome: 'ok', service: 'gateway' })), 1);
    assert.ok(sum(find(samples, 'swiftcart_http_requests_total', { route: '/graphql', method: 'POST', status: '200' })) >= 1);
    assert.ok(sum(find(samples, 'swiftcart_http_request_duration_seconds_count', { route: '/graphql' })) >= 1);
    assert.equal(find(samples, 'swiftcart_gateway_live_connections').length, 1);
    // Deduplication (gateway/src/dedup.ts): the mutation was executed, never shared.
    assert.equal(find(samples, 'swiftcart_gateway_dedup_requests_total').length, 6);
    assert.ok(sum(find(samples, 'swiftcart_gateway_dedup_requests_total', { scope: 'inbound', outcome: 'ineligible' })) >= 1);
    assert.equal(sum(find(samples, 'swiftcart_gateway_dedup_requests_total', { scope: 'subgraph', outcome: 'shared' })), 0);
    // Entity batching (gateway/src/entity-batcher.ts): one series per subgraph, never more requests than fetches.
    const fetches = find(samples, 'swiftcart_gateway_entity_fetches_total');
    assert.deepEqual(fetches.map((s) => s.labels.subgraph).sort(), [...SERVICE_NAMES].sort());
    for (const { labels, value } of fetches)
      assert.ok(sum(find(samples, 'swiftcart_gateway_entity_requests_total', labels)) <= value, `${labels.subgraph}: requests <= fetches`);
    assert.ok(find(samples, 'process_cpu_user_seconds_total', { service: 'gateway' })[0].value > 0);
    assert.ok(find(samples, 'nodejs_heap_size_used_bytes').length >= 1);
  });

  test('every service serves /metrics without the gateway credential, which its GraphQL endpoint requires', async () => {
    for (const name of SERVICE_NAMES) {
      const samples = await service(name);
      assert.ok(find(samples, 'process_resident_memory_bytes', { service: name, role: 'all' }).length === 1, `${name}: process defaults`);
    }
    const graphql = await fetch(stack.services.product!.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"query":"{__typename}"}',
    });
    assert.equal(graphql.status, 401);
  });

  test('the order service: orders by status, its outbox published and drained, its consumers with processed events and a lag that is not negative', async () => {
    const samples = await service('order');
    assert.equal(sum(find(samples, 'swiftcart_orders', { status: 'CONFIRMED' })), 1);
    assert.ok(sum(find(samples, 'swiftcart_graphql_operations_total', { type: 'mutation', outcome: 'ok' })) >= 1, 'placeOrder as the gateway sent it');
    assert.ok(sum(find(samples, 'swiftcart_outbox_publish_wait_seconds_count')) >= 2, 'OrderPlaced and PaymentRequested at least');
    // The relay is woken at once by a commit: what it published it marked.
    const backlog = await waitFor(async () => {
      const [row] = find(await service('order'), 'swiftcart_outbox_backlog');
      return row && row.value === 0 ? row : undefined;
    }, 'the order outbox to be drained');
    assert.equal(backlog.value, 0);
    assert.equal(find(samples, 'swiftcart_outbox_oldest_unpublished_seconds').length, 1);
    const processed = find(samples, 'swiftcart_consumer_events_total', { outcome: 'processed' });
    assert.ok(sum(processed) >= 3, `StockReserved, PaymentAuthorized and ProductCreated at least: ${JSON.stringify(processed)}`);
    const lag = find(samples, 'swiftcart_consumer_lag_messages');
    assert.ok(lag.length >= 3, `one series per consumer, topic and partition: ${JSON.stringify(lag)}`);
    for (const series of lag) assert.ok(series.value >= 0 && Number.isInteger(series.value), JSON.stringify(series));
    assert.deepEqual(
      find(samples, 'swiftcart_consumer_events_total', { outcome: 'dead_lettered' }).filter((s) => s.value !== 0),
      [],
    );
  });

  test('the product cache counts its misses and hits; the payment breaker is closed; the door is open', async () => {
    for (let i = 0; i < 2; i++) {
      const read = await stack.graphql('{ product(sku: "METRICS-1") { name } }');
      assert.equal(read.errors, undefined, JSON.stringify(read.errors));
    }
    const product = await service('product');
    assert.ok(sum(find(product, 'swiftcart_cache_lookups_total', { cache: 'product', result: 'miss' })) >= 1);
    assert.ok(sum(find(product, 'swiftcart_cache_lookups_total', { cache: 'product', result: 'hit' })) >= 1);
    const payment = await service('payment');
    assert.equal(sum(find(payment, 'swiftcart_circuit_breaker_state', { breaker: 'payment-provider', state: 'closed' })), 1);
    assert.equal(sum(find(payment, 'swiftcart_circuit_breaker_state', { breaker: 'payment-provider', state: 'open' })), 0);
    const order = await service('order');
    assert.equal(sum(find(order, 'swiftcart_admission_open')), 1);
    assert.equal(sum(find(order, 'swiftcart_admission_refused_total')), 0);
    assert.equal(find(order, 'swiftcart_admission_lag_seconds').length, 1);
  });

  test("inventory, payment and shipment each processed the order's events", async () => {
    for (const name of ['inventory', 'payment', 'shipment'] as const) {
      const samples = await service(name);
      assert.ok(sum(find(samples, 'swiftcart_consumer_events_total', { outcome: 'processed', service: name })) >= 1, name);
    }
  });

  /**
   * The metrics of `queries` (each with the name it is known by) that no process declares. Every
   * query must name at least one metric. Declared counts, not observed: a labelled metric has no
   * series until something happens (a GraphQL error, an order that ends unconfirmed). A histogram
   * counts under the series names a query uses (`_bucket`, ...), not its bare name, of which
   * Prometheus stores nothing.
   */
  async function notServed(queries: readonly { readonly name: string; readonly expr: string }[]) {
    const served = new Set<string>();
    for (const url of [stack.gateway!.url, ...SERVICE_NAMES.map((name) => stack.services[name]!.url)]) {
      for (const name of declared(await metricsText(url))) served.add(name);
    }
    return queries.flatMap(({ name, expr }) => {
      const metrics = [...expr.matchAll(/\b(?:swiftcart|process|nodejs)_[a-z0-9_]+\b/g)].map((m) => m[0]);
      assert.ok(metrics.length > 0, `${name} queries a SwiftCart, process or Node.js metric: ${expr}`);
      return metrics.filter((metric) => !served.has(metric)).map((metric) => ({ name, metric }));
    });
  }

  test('every metric the alert rules query (deploy/prometheus/alerts.yml) is served by some process', async () => {
    const rules = parseYaml(readFileSync(path.join(REPO_ROOT, 'deploy', 'prometheus', 'alerts.yml'), 'utf8')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const queries = rules.groups.flatMap((group) => group.rules).map((rule) => ({ name: rule.alert, expr: rule.expr }));
    assert.ok(queries.length >= 4, 'the rules query SwiftCart metrics');
    assert.deepEqual(await notServed(queries), []);
  });

  test('every metric the Grafana dashboard queries (deploy/grafana/dashboards/swiftcart.json) is served by some process', async () => {
    const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'deploy', 'grafana', 'dashboards', 'swiftcart.json'), 'utf8')) as {
      panels: { title: string; targets?: { refId: string; expr: string }[] }[];
      templating: { list: { name: string; definition: string }[] };
    };
    const queries = [
      ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ name: `${panel.title} (${target.refId})`, expr: target.expr }))),
      ...dashboard.templating.list.map((variable) => ({ name: `$${variable.name}`, expr: variable.definition })),
    ];
    assert.ok(queries.length >= 20, `${queries.length} queries`);
    assert.deepEqual(await notServed(queries), []);
  });
});
