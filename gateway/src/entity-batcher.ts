/**
 * Merges the entity fetches that subscription events of different groups make at the same moment
 * into one `_entities` request per subgraph, operation and credentials. 1,000 stock changes a
 * second each needing `product { name }` would otherwise be 1,000 requests a second to the product
 * subgraph. Requests are collected until the current macrotask ends (setImmediate): an idle gateway
 * adds no delay, a busy one — whose socket reads deliver many events at once — sends bigger batches.
 */
import type { GraphQLFormattedError } from 'graphql';
import type { GraphQLDataSource } from '@apollo/gateway';

type ProcessOptions = Parameters<GraphQLDataSource['process']>[0];
type Response = Awaited<ReturnType<GraphQLDataSource['process']>>;

interface Pending {
  readonly options: ProcessOptions;
  readonly representations: readonly unknown[];
  resolve(response: Response): void;
  reject(error: unknown): void;
}

/** The field every entity fetch selects, and the variable its keys travel in. */
const ENTITIES = '_entities';
const REPRESENTATIONS = 'representations';

/** One request's share of a batch response: its slice of `_entities`, its errors re-indexed. */
function share(response: Response, offset: number, count: number): Response {
  const entities = (response.data as Record<string, unknown[] | null> | null | undefined)?.[ENTITIES];
  const errors: GraphQLFormattedError[] = [];
  for (const error of (response.errors ?? []) as GraphQLFormattedError[]) {
    const index = error.path?.[0] === ENTITIES ? error.path[1] : undefined;
    if (typeof index !== 'number') errors.push(error);
    else if (index >= offset && index < offset + count) errors.push({ ...error, path: [ENTITIES, index - offset, ...error.path!.slice(2)] });
  }
  return {
    ...response,
    data: entities ? { [ENTITIES]: entities.slice(offset, offset + count) } : (response.data ?? null),
    errors: errors.length ? (errors as never) : undefined,
  };
}

/** Wraps a subgraph's data source; anything but an entity fetch passes straight through. */
export class EntityBatcher implements GraphQLDataSource {
  readonly #inner: GraphQLDataSource;
  /** Entity fetches waiting for the end of this macrotask, by operation, credentials and other variables. */
  readonly #pending = new Map<string, Pending[]>();
  #scheduled = false;
  /** Requests sent to the subgraph, and the entity fetches they carried (for the benchmark). */
  readonly stats = { requests: 0, fetches: 0 };

  constructor(inner: GraphQLDataSource) {
    this.#inner = inner;
  }

  process(options: ProcessOptions): Promise<Response> {
    const variables = options.request.variables;
    const representations = variables?.[REPRESENTATIONS];
    if (!Array.isArray(representations) || !options.request.query) return this.#inner.process(options);
    const { [REPRESENTATIONS]: _, ...others } = variables!;
    const authorization = (options.context as { authorization?: string }).authorization ?? '';
    const key = `${options.request.operationName ?? ''}\n${options.request.query}\n${authorization}\n${JSON.stringify(others)}`;
    return new Promise((resolve, reject) => {
      let batch = this.#pending.get(key);
      if (!batch) this.#pending.set(key, (batch = []));
      batch.push({ options, representations, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batches = [...this.#pending.values()];
    this.#pending.clear();
    for (const batch of batches) void this.#send(batch);
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
    try {
      const response = await this.#inner.process({
        ...first,
        request: { ...first.request, variables: { ...first.request.variables, [REPRESENTATIONS]: batch.flatMap((p) => p.representations) } },
      } as ProcessOptions);
      let offset = 0;
      for (const pending of batch) {
        pending.resolve(share(response, offset, pending.representations.length));
        offset += pending.representations.length;
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    }
  }
}
