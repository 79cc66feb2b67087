/**
 * In-flight deduplication: identical read requests that overlap in time share one execution and
 * its serialised answer, at two places.
 *
 * - **Inbound** ({@link inboundSharing}): the same query document, variables, operation name and
 *   credentials (the raw body, `Authorization` and `Accept`) from clients while one is being
 *   answered: the later ones get the first one's status, headers and body string. They are still
 *   counted and limited by the edge (origins, rate limits) before they get here.
 * - **Subgraph fetches** ({@link sharingFetcher}): the same subgraph URL, forwarded headers (the
 *   caller's `Authorization`, the gateway's credential, tracing) and body: one HTTP round trip, and
 *   each caller parses its own copy of the response bytes, so no caller sees another's objects.
 *
 * Only queries are shared, never mutations (nor subscriptions, which do not come this way): a
 * mutation asked twice runs twice. Nothing is cached: an entry lives while its execution is in
 * flight, so an answer is never older than the request that gets it. See docs/adr/0024-deduplication.md.
 */
import type { HTTPGraphQLResponse } from '@apollo/server';
import { type DocumentNode, Kind, type OperationTypeNode, parse } from 'graphql';
import type { GraphQLHttpCall } from '@swiftcart/platform/http';
import { type Registry, scrapedCounter } from '@swiftcart/platform/metrics';
import { oneOf, z } from '@swiftcart/platform/settings';
import type { Fetcher } from './fetcher.ts';

/** The deduplication switches, `GATEWAY_DEDUP_*`. */
export const dedupSettings = z.object({
  GATEWAY_DEDUP_INBOUND: oneOf(['on', 'off'], { default: 'on' }).describe(
    'identical queries from clients (same body, `Authorization` and `Accept`) in flight at once share one execution and its answer',
  ),
  GATEWAY_DEDUP_SUBGRAPH: oneOf(['on', 'off'], { default: 'on' }).describe(
    'identical subgraph query fetches (same subgraph, body and forwarded headers) in flight at once share one HTTP round trip',
  ),
});

/** Where a request was deduplicated. */
export type DedupScope = 'inbound' | 'subgraph';

/**
 * What happened to each request that could be deduplicated: `executed` ran (others may have
 * shared it), `shared` got the answer of one in flight, `ineligible` could not share (a mutation,
 * a streamed answer, a body that is no single query).
 */
export type DedupOutcome = 'executed' | 'shared' | 'ineligible';

/** Requests by scope and outcome. */
export type DedupCounts = Record<DedupScope, Record<DedupOutcome, number>>;

/** Counters of both scopes; plain numbers on the hot path, read by Prometheus at each scrape. */
export class DedupStats {
  readonly counts: DedupCounts = {
    inbound: { executed: 0, shared: 0, ineligible: 0 },
    subgraph: { executed: 0, shared: 0, ineligible: 0 },
  };

  /** Registers `swiftcart_gateway_dedup_requests_total{scope, outcome}`. */
  register(registry: Registry): void {
    scrapedCounter(
      registry,
      {
        name: 'swiftcart_gateway_dedup_requests_total',
        help: 'Requests the gateway could deduplicate, by scope (inbound, subgraph) and outcome (executed, shared, ineligible)',
        labelNames: ['scope', 'outcome'],
      },
      (count) => {
        for (const scope of Object.keys(this.counts) as DedupScope[]) {
          for (const outcome of Object.keys(this.counts[scope]) as DedupOutcome[]) count(this.counts[scope][outcome], { scope, outcome });
        }
      },
    );
  }
}

/** Executions in flight by key; an entry leaves when its execution settles. */
class InFlight<T> {
  readonly #entries = new Map<string, Promise<T>>();

  /** `execute()` unless an execution of `key` is in flight; `shared` says which happened. */
  run(key: string, execute: () => Promise<T>): { readonly result: Promise<T>; readonly shared: boolean } {
    const running = this.#entries.get(key);
    if (running) return { result: running, shared: true };
    const result = execute().finally(() => this.#entries.delete(key));
    this.#entries.set(key, result);
    return { result, shared: false };
  }

  get size(): number {
    return this.#entries.size;
  }
}

// ---------------------------------------------------------------------------------------------
// Subgraph fetches

/**
 * The body of a query fetch as `SubgraphDataSource` (and Apollo's `RemoteGraphQLDataSource`) writes it: `{"query":"…` first, and the
 * query planner's operations start with their keyword, or `{` for an anonymous query. Anything else
 * (a mutation, or a body written differently) is not shared.
 */
const QUERY_FETCH_BODY = /^\{"query":"(?:query[\s({]|\{)/;

/** A fetcher that shares identical subgraph query fetches in flight; each caller gets its own copy of the response. */
export function sharingFetcher(inner: Fetcher, stats: DedupStats): Fetcher {
  const inFlight = new InFlight<Awaited<ReturnType<Fetcher>>>();
  const counts = stats.counts.subgraph;
  return async (url, init = {}) => {
    const body = init.body;
    if (init.method !== 'POST' || init.signal || typeof body !== 'string' || !QUERY_FETCH_BODY.test(body)) {
      counts.ineligible++;
      return inner(url, init);
    }
    let key = `${url}\n`;
    const headers = init.headers as Record<string, string> | undefined;
    for (const name in headers) key += `${name}:${headers[name]}\n`;
    key += body;
    const { result, shared } = inFlight.run(key, () => inner(url, init));
    counts[shared ? 'shared' : 'executed']++;
    // The shared response is never read itself: each caller reads a clone, over the same bytes.
    return (await result).clone();
  };
}

// ---------------------------------------------------------------------------------------------
// Inbound requests

/** Documents whose operations' types are known; bounded, oldest out first. */
const MAX_KNOWN_DOCUMENTS = 1_000;

/** Whether an inbound request is a single query, by its document's operations (parsed once per document). */
class QueryDocuments {
  readonly #known = new Map<string, Map<string, OperationTypeNode> | null>();
  readonly #maxTokens: number | undefined;

  constructor(maxTokens: number | undefined) {
    this.#maxTokens = maxTokens;
  }

  /** Whether `operationName` (or the only operation) of `query` is a query; false when it does not parse. */
  isQuery(query: string, operationName: string | undefined): boolean {
    let operations = this.#known.get(query);
    if (operations === undefined) {
      operations = operationsOf(query, this.#maxTokens);
      if (this.#known.size >= MAX_KNOWN_DOCUMENTS) this.#known.delete(this.#known.keys().next().value!);
      this.#known.set(query, operations);
    }
    if (!operations) return false;
    const type = operationName === undefined ? (operations.size === 1 ? operations.values().next().value : undefined) : operations.get(operationName);
    return type === 'query';
  }
}

/** Each named operation's type ('' for an anonymous one), or null when the document does not parse. */
function operationsOf(query: string, maxTokens: number | undefined): Map<string, OperationTypeNode> | null {
  let document: DocumentNode;
  try {
    // The edge's token limit bounds this parse as it bounds Apollo's.
    document = parse(query, { noLocation: true, maxTokens });
  } catch {
    return null;
  }
  const operations = new Map<string, OperationTypeNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) operations.set(definition.name?.value ?? '', definition.operation);
  }
  return operations;
}

/** Options of {@link inboundSharing}. */
export interface InboundSharingOptions {
  readonly stats: DedupStats;
  /** The gateway's token limit (GRAPHQL_MAX_TOKENS), for the parse that finds the operation's type. */
  readonly maxTokens?: number;
}

/**
 * The HTTP handler's `execute` hook (platform/src/http.ts): identical single queries in flight
 * share one execution and its complete answer. A streamed answer (`@defer`) is not shared: a
 * request that waited for one runs itself.
 */
export function inboundSharing(options: InboundSharingOptions) {
  const inFlight = new InFlight<HTTPGraphQLResponse>();
  const documents = new QueryDocuments(options.maxTokens);
  const counts = options.stats.counts.inbound;
  return async (call: GraphQLHttpCall, execute: () => Promise<HTTPGraphQLResponse>): Promise<HTTPGraphQLResponse> => {
    const body = call.request.body as { query?: unknown; operationName?: unknown } | undefined;
    if (
      call.request.method !== 'POST' ||
      typeof body !== 'object' ||
      body === null ||
      Array.isArray(body) ||
      typeof body.query !== 'string' ||
      (body.operationName != null && typeof body.operationName !== 'string') ||
      !documents.isQuery(body.query, (body.operationName as string | null | undefined) ?? undefined)
    ) {
      counts.ineligible++;
      return execute();
    }
    const headers = call.request.headers;
    const key = `${headers.get('authorization') ?? ''}\n${headers.get('accept') ?? ''}\n${call.text}`;
    const { result, shared } = inFlight.run(key, execute);
    counts[shared ? 'shared' : 'executed']++;
    if (!shared) return result;
    const response = await result;
    if (response.body.kind === 'complete') return response;
    counts.shared--;
    counts.ineligible++;
    return execute();
  };
}
