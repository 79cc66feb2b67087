/**
 * Merges the entity fetches that are in flight at the same moment, for query plans and
 * subscription events alike, into one `_entities` request per subgraph operation, credentials and
 * forwarded headers. Fifty storefront pages planned alike ask the inventory for stock at the same
 * plan step: one request with their representations end to end costs the gateway (and the
 * subgraph) one HTTP round trip instead of fifty; 1,000 stock changes a second each needing
 * `product { name }` would otherwise be 1,000 requests a second to the product subgraph.
 *
 * Requests are collected until the current macrotask ends (setImmediate): an idle gateway adds no
 * delay, a busy one (whose socket reads deliver many answers at once) sends bigger batches. Each
 * caller gets back exactly its own entities and errors, and its own cache-control restriction.
 * When the subgraph refuses a merged request as a whole (a request-level error, or 413 for its
 * size), every fetch is sent again alone, so that no caller gets an answer it would not have had
 * alone. Any other failure (connection, timeout, 5xx) fails each caller as it would have alone,
 * without resending: an overloaded subgraph is not sent more. See docs/adr/0025-entity-batching.md.
 */
import type { GraphQLDataSource } from '@apollo/gateway';
import type { GraphQLFormattedError } from 'graphql';
import { type Registry, scrapedCounter } from '@swiftcart/platform/metrics';
import { oneOf, z } from '@swiftcart/platform/settings';
import { restrictCachePolicy } from './data-source.ts';

type ProcessOptions = Parameters<GraphQLDataSource['process']>[0];
type Response = Awaited<ReturnType<GraphQLDataSource['process']>>;

/** The batching switch, `GATEWAY_BATCH_ENTITIES`. */
export const entityBatchSettings = z.object({
  GATEWAY_BATCH_ENTITIES: oneOf(['on', 'off'], { default: 'on' }).describe(
    'entity fetches of queries in flight at once, with the same subgraph operation, credentials and forwarded headers, share one `_entities` request',
  ),
});

/** Representations one merged request carries at most: far below a subgraph's 1 MiB body limit for keys of a few fields. */
export const MAX_BATCH_REPRESENTATIONS = 1_000;

/** The field every entity fetch selects, and the variable its keys travel in. */
const ENTITIES = '_entities';
const REPRESENTATIONS = 'representations';
/** A query operation's text starts so; mutations are never merged (they are not entity fetches anyway). */
const QUERY_OPERATION = /^\s*query\b/;

interface Pending {
  readonly options: ProcessOptions;
  readonly representations: readonly unknown[];
  resolve(response: Response): void;
  reject(error: unknown): void;
}

interface Batch {
  readonly pending: Pending[];
  size: number;
}

/** One request's share of a batch response: its slice of `entities`, its errors re-indexed. */
function share(response: Response, entities: readonly unknown[], offset: number, count: number): Response {
  const errors: GraphQLFormattedError[] = [];
  for (const error of (response.errors ?? []) as GraphQLFormattedError[]) {
    const index = error.path?.[0] === ENTITIES ? error.path[1] : undefined;
    if (typeof index !== 'number') errors.push(error);
    else if (index >= offset && index < offset + count) errors.push({ ...error, path: [ENTITIES, index - offset, ...error.path!.slice(2)] });
  }
  return { ...response, data: { [ENTITIES]: entities.slice(offset, offset + count) }, errors: errors.length ? (errors as never) : undefined };
}

/** A merged request the subgraph refused as a whole, which its parts alone may not have been. */
function refusedAsWhole(error: unknown): boolean {
  return (error as { extensions?: { response?: { status?: number } } })?.extensions?.response?.status === 413;
}

/** Wraps a subgraph's data source; anything but an entity query fetch passes straight through. */
export class EntityBatcher implements GraphQLDataSource {
  readonly #inner: GraphQLDataSource;
  /** Entity fetches waiting for the end of this macrotask, by operation, credentials, headers and other variables. */
  readonly #pending = new Map<string, Batch>();
  #scheduled = false;
  /**
   * Entity fetches that came through, requests sent for them, and fetches sent again alone after
   * their merged request was refused as a whole.
   */
  readonly stats = { requests: 0, fetches: 0, resent: 0 };

  constructor(inner: GraphQLDataSource) {
    this.#inner = inner;
  }

  process(options: ProcessOptions): Promise<Response> {
    const { request } = options;
    const representations = request.variables?.[REPRESENTATIONS];
    if (!Array.isArray(representations) || !request.query || !QUERY_OPERATION.test(request.query)) return this.#inner.process(options);
    const key = this.#keyOf(options);
    return new Promise((resolve, reject) => {
      let batch = this.#pending.get(key);
      if (batch && batch.size + representations.length > MAX_BATCH_REPRESENTATIONS) {
        this.#pending.delete(key);
        void this.#send(batch.pending);
        batch = undefined;
      }
      if (!batch) this.#pending.set(key, (batch = { pending: [], size: 0 }));
      batch.pending.push({ options, representations, resolve, reject });
      batch.size += representations.length;
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #keyOf({ request, context }: ProcessOptions): string {
    const { [REPRESENTATIONS]: _, ...others } = request.variables!;
    let headers = '';
    if (request.http?.headers) for (const [name, value] of request.http.headers) headers += `${name}:${value}\n`;
    const authorization = (context as { authorization?: string }).authorization ?? '';
    return `${request.operationName ?? ''}\n${request.query}\n${authorization}\n${headers}\n${JSON.stringify(others)}`;
  }

  #flush(): void {
    this.#scheduled = false;
    const batches = [...this.#pending.values()];
    this.#pending.clear();
    for (const batch of batches) void this.#send(batch.pending);
  }

  async #send(batch: readonly Pending[]): Promise<void> {
    this.stats.requests++;
    this.stats.fetches += batch.length;
    if (batch.length === 1) {
      const [only] = batch;
      this.#inner.process(only.options).then(only.resolve, only.reject);
      return;
    }
    const first = batch[0].options;
    let response: Response;
    try {
      response = await this.#inner.process({
        ...first,
        request: { ...first.request, variables: { ...first.request.variables, [REPRESENTATIONS]: batch.flatMap((p) => p.representations) } },
      } as ProcessOptions);
    } catch (error) {
      if (refusedAsWhole(error)) this.#resendAlone(batch);
      else for (const pending of batch) pending.reject(error);
      return;
    }
    const entities = (response.data as Record<string, unknown> | null | undefined)?.[ENTITIES];
    if (!Array.isArray(entities)) {
      this.#resendAlone(batch);
      return;
    }
    let offset = 0;
    for (const [index, pending] of batch.entries()) {
      // The first caller's restriction was applied by the data source itself.
      if (index > 0) restrictCachePolicy(pending.options, response.http);
      pending.resolve(share(response, entities, offset, pending.representations.length));
      offset += pending.representations.length;
    }
  }

  #resendAlone(batch: readonly Pending[]): void {
    this.stats.requests += batch.length;
    this.stats.resent += batch.length;
    for (const pending of batch) this.#inner.process(pending.options).then(pending.resolve, pending.reject);
  }
}

/**
 * Registers `swiftcart_gateway_entity_fetches_total{subgraph}` and
 * `swiftcart_gateway_entity_requests_total{subgraph}`, read at each scrape from the batchers the
 * gateway holds now (a schema reload builds new ones).
 */
export function registerEntityBatchMetrics(registry: Registry, batchers: () => Readonly<Record<string, { readonly dataSource: EntityBatcher }>>): void {
  const counter = (name: string, help: string, read: (stats: EntityBatcher['stats']) => number) =>
    scrapedCounter(registry, { name, help, labelNames: ['subgraph'] }, (count) => {
      for (const [subgraph, { dataSource }] of Object.entries(batchers())) count(read(dataSource.stats), { subgraph });
    });
  counter('swiftcart_gateway_entity_fetches_total', 'Entity fetches of query plans and subscription events, by subgraph', (stats) => stats.fetches);
  counter(
    'swiftcart_gateway_entity_requests_total',
    'Requests sent to a subgraph for its entity fetches (fewer than the fetches when they were merged), by subgraph',
    (stats) => stats.requests,
  );
}
