/**
 * Federated subscriptions on Apollo's own planner and executor (DESIGN.md §8, docs/live.md).
 *
 * A subscription is planned as `primary` (a subscription to the subgraph owning the root field)
 * plus `rest` (fetches from other subgraphs, run per event). Identical primaries share ONE
 * upstream subscription; client subscriptions with the same operation, variables and (unless the
 * field is `@public`) credentials form a group, and `rest` runs once per event per group. The
 * result is fanned out to the group's clients.
 */
import {
  type DocumentNode,
  type FormattedExecutionResult,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  GraphQLError,
  type SelectionNode,
  Kind,
  getNamedType,
  isObjectType,
} from 'graphql';
import { type GraphQLDataSource, type ServiceMap, buildOperationContext } from '@apollo/gateway';
import { type Schema, Supergraph, operationFromDocument } from '@apollo/federation-internals';
import { type FetchNode, type QueryPlan, QueryPlanner } from '@apollo/query-planner';
import type { Logger } from '@swiftcart/platform/logger';
import { executeQueryPlan } from './plan-execution.ts';
import type { LiveMetrics } from './live-metrics.ts';
import type { UpstreamConnections } from './upstream.ts';

/** The composed directive that marks a subscription field whose result is the same for every viewer. */
export const PUBLIC_DIRECTIVE = 'public';

/** Error codes of the live-update path, in `extensions.code`. */
export const LiveErrorCode = {
  /** The schema changed; the subscription ended and should be made again. */
  SchemaReload: 'SUBSCRIPTION_SCHEMA_RELOAD',
  /** The owning subgraph refused the subscription or stayed unreachable; subscribe again later. */
  UpstreamFailed: 'SUBSCRIPTION_UPSTREAM_FAILED',
  /**
   * The gateway is shutting down: a subscription asked for in the moment before its socket closes
   * (the socket then closes with 1001, and graphql-ws clients reconnect to another replica).
   */
  Shutdown: 'SHUTTING_DOWN',
} as const;

/** Where a client subscription's messages go. */
export interface ClientSink {
  /** One message for the client, in order. */
  push(result: FormattedExecutionResult): void;
  /** No more messages will come. */
  end(): void;
}

/** A client's subscription request, already parsed and validated against the API schema. */
export interface LiveRequest {
  readonly document: DocumentNode;
  /** The printed document: the plan cache key. */
  readonly source: string;
  readonly operationName: string | undefined;
  /** Coerced variable values. */
  readonly variables: Record<string, unknown>;
  /** The client's `Authorization` (already verified), or undefined. */
  readonly authorization: string | undefined;
  /** Context handed to the subgraph data sources for `rest` (the gateway's request context). */
  readonly context: Record<string, unknown>;
}

/** A cached plan of one subscription document. */
interface LivePlan {
  readonly primary: FetchNode;
  /** `primary` with its service renamed to the event source, followed by `rest`. */
  readonly plan: QueryPlan;
  readonly hasRest: boolean;
  readonly operationContext: ReturnType<typeof buildOperationContext>;
  readonly public: boolean;
  /** The root field's response key, and the aliases whose values identify the root object. */
  readonly rootKey: string;
  readonly replayAliases: readonly string[];
}

interface Upstream {
  readonly key: string;
  readonly groups: Set<Group>;
  /** The latest event per root identity: what a new group receives first. */
  readonly latest: Map<string, FormattedExecutionResult<Record<string, unknown>, unknown>>;
  stop: () => void;
}

interface Group {
  readonly key: string;
  /** The schema the group was planned on: an event still in flight after a reload is shaped with it. */
  readonly planning: Planning;
  readonly live: LivePlan;
  readonly request: LiveRequest;
  readonly upstream: Upstream;
  readonly clients: Set<ClientSink>;
  /** The latest result per root identity: what a new client of the group receives first. */
  readonly latest: Map<string, FormattedExecutionResult>;
  /** Events of a group are shaped one after the other, so clients see them in upstream order. */
  tail: Promise<void>;
}

/** The service name under which the event payload is fed to the plan executor. */
const EVENT_SOURCE = '__subscription_event__';
/** The alias prefix of the identity fields added to the planned primary fetch. */
const REPLAY_ALIAS_PREFIX = 'liveReplayKey_';
/** Plans kept per gateway; a storefront has a handful of subscription documents. */
const MAX_CACHED_PLANS = 1_000;

/** JSON with object keys sorted, so equal variables give equal keys. */
function stableJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(record[k])}`)
    .join(',')}}`;
}

function formatErrors(errors: readonly unknown[] | undefined): GraphQLFormattedError[] | undefined {
  if (!errors || errors.length === 0) return undefined;
  return errors.map((error) => {
    const e = error as { toJSON?: () => GraphQLFormattedError; message: string; extensions?: Record<string, unknown> };
    return typeof e.toJSON === 'function' ? e.toJSON() : ({ message: e.message, extensions: e.extensions } as GraphQLFormattedError);
  });
}

function errorResult(message: string, code: string): FormattedExecutionResult {
  return { errors: [{ message, extensions: { code } }] };
}

/**
 * The schema-dependent half: planner, schemas and the plan cache. Rebuilt from the supergraph on
 * every schema load; live subscriptions of the old schema are ended first.
 */
class Planning {
  readonly supergraphSchema: GraphQLSchema;
  readonly apiSchema: Schema;
  /** The API schema as graphql-js sees it: what client documents are validated against. */
  readonly apiGraphQLSchema: GraphQLSchema;
  readonly #planner: QueryPlanner;
  readonly #supergraph: Supergraph;
  readonly #plans = new Map<string, LivePlan>();

  constructor(supergraphSdl: string) {
    this.#supergraph = Supergraph.build(supergraphSdl);
    this.apiSchema = this.#supergraph.apiSchema();
    this.supergraphSchema = this.#supergraph.schema.toGraphQLJSSchema();
    this.apiGraphQLSchema = this.apiSchema.toGraphQLJSSchema();
    this.#planner = new QueryPlanner(this.#supergraph);
  }

  plan(request: LiveRequest): LivePlan {
    const cacheKey = `${request.operationName ?? ''}\n${request.source}`;
    const cached = this.#plans.get(cacheKey);
    if (cached) return cached;
    const operationContext = buildOperationContext({
      schema: this.apiGraphQLSchema,
      operationDocument: request.document,
      operationName: request.operationName,
    });
    const definition = operationContext.operation;
    const root = definition.selectionSet.selections[0];
    if (root?.kind !== Kind.FIELD) throw new Error('A subscription must select exactly one root field');
    const fieldDef = this.#supergraph.schema.schemaDefinition.rootType('subscription')?.field(root.name.value);
    const isPublic = (fieldDef?.appliedDirectivesOf(PUBLIC_DIRECTIVE).length ?? 0) > 0;

    // Plan a copy whose root selection also fetches the root object's ID fields: they tell one
    // key's latest event from another's, so a late subscriber can be sent the current state of all.
    const replayAliases: string[] = [];
    let planned: OperationDefinitionNode = definition;
    const rootType = getNamedType(operationContext.schema.getSubscriptionType()?.getFields()[root.name.value]?.type);
    if (isObjectType(rootType) && root.selectionSet) {
      const extra: SelectionNode[] = [];
      for (const field of Object.values(rootType.getFields())) {
        const named = getNamedType(field.type);
        if (named.name !== 'ID' || field.args.length > 0) continue;
        const alias = `${REPLAY_ALIAS_PREFIX}${field.name}`;
        replayAliases.push(alias);
        extra.push({ kind: Kind.FIELD, alias: { kind: Kind.NAME, value: alias }, name: { kind: Kind.NAME, value: field.name } });
      }
      if (extra.length) {
        planned = {
          ...definition,
          selectionSet: {
            ...definition.selectionSet,
            selections: [{ ...root, selectionSet: { ...root.selectionSet, selections: [...root.selectionSet.selections, ...extra] } }],
          },
        };
      }
    }
    const operation = operationFromDocument(
      this.apiSchema,
      {
        kind: Kind.DOCUMENT,
        definitions: [planned, ...Object.values(operationContext.fragments)],
      },
      { operationName: request.operationName },
    );
    const queryPlan = this.#planner.buildQueryPlan(operation);
    const node = queryPlan.node;
    if (node?.kind !== 'Subscription') throw new Error('The operation did not plan as a subscription');
    const source: FetchNode = { ...node.primary, serviceName: EVENT_SOURCE };
    const live: LivePlan = {
      primary: node.primary,
      plan: { kind: 'QueryPlan', node: node.rest ? { kind: 'Sequence', nodes: [source, node.rest] } : source },
      hasRest: node.rest !== undefined,
      operationContext,
      public: isPublic,
      rootKey: root.alias?.value ?? root.name.value,
      replayAliases,
    };
    if (this.#plans.size >= MAX_CACHED_PLANS) this.#plans.delete(this.#plans.keys().next().value!);
    this.#plans.set(cacheKey, live);
    return live;
  }
}

/** What the engine needs from the gateway. */
export interface LiveSubscriptionsOptions {
  readonly log: Logger;
  readonly metrics: LiveMetrics;
  readonly upstream: UpstreamConnections;
  /** The routing URLs (one per replica) and data source of each subgraph, as the gateway built them. */
  readonly subgraphs: () => Readonly<Record<string, { urls: readonly string[]; dataSource: GraphQLDataSource }>>;
}

/** Plans, shares and fans out subscriptions. One per gateway. */
export class LiveSubscriptions {
  readonly #options: LiveSubscriptionsOptions;
  readonly #upstreams = new Map<string, Upstream>();
  readonly #groups = new Map<string, Group>();
  #planning: Planning | null = null;
  #closed = false;

  constructor(options: LiveSubscriptionsOptions) {
    this.#options = options;
  }

  /** The API schema client documents are validated against; null before the first schema load. */
  get apiSchema(): GraphQLSchema | null {
    return this.#planning?.apiGraphQLSchema ?? null;
  }

  /**
   * Adopts a new supergraph. Subscriptions planned on the previous one end with
   * SUBSCRIPTION_SCHEMA_RELOAD, so that clients subscribe again against the new schema.
   */
  updateSchema(supergraphSdl: string): void {
    const previous = this.#planning;
    this.#planning = new Planning(supergraphSdl);
    if (previous) this.#endAll(errorResult('The schema was reloaded: subscribe again', LiveErrorCode.SchemaReload));
  }

  /**
   * Starts a client subscription. Returns the function that ends it, or throws when the operation
   * cannot be planned. The client first receives the current state (replayed from the shared
   * upstream, or sent by the subgraph when the upstream is new), then every change.
   */
  subscribe(request: LiveRequest, sink: ClientSink): () => void {
    if (this.#closed) throw new GraphQLError('The gateway is shutting down: subscribe again', { extensions: { code: LiveErrorCode.Shutdown } });
    if (!this.#planning) throw new Error('The gateway is not accepting subscriptions');
    const live = this.#planning.plan(request);
    const upstreamVariables: Record<string, unknown> = {};
    for (const name of live.primary.variableUsages ?? []) if (name in request.variables) upstreamVariables[name] = request.variables[name];
    const credentials = live.public ? '' : (request.authorization ?? '');
    const upstreamKey = `${live.primary.serviceName}\n${live.primary.operation}\n${stableJson(upstreamVariables)}\n${credentials}`;
    const groupKey = `${upstreamKey}\n${request.operationName ?? ''}\n${request.source}\n${stableJson(request.variables)}`;

    let group = this.#groups.get(groupKey);
    if (group) {
      group.clients.add(sink);
      for (const result of group.latest.values()) sink.push(result);
    } else {
      let upstream = this.#upstreams.get(upstreamKey);
      const isNewUpstream = !upstream;
      upstream ??= this.#openUpstream(upstreamKey, live, upstreamVariables, request.authorization);
      group = {
        key: groupKey,
        planning: this.#planning,
        live,
        upstream,
        clients: new Set([sink]),
        latest: new Map(),
        tail: Promise.resolve(),
        request: live.public ? { ...request, authorization: undefined, context: { ...request.context, authorization: undefined } } : request,
      };
      this.#groups.set(groupKey, group);
      upstream.groups.add(group);
      if (!isNewUpstream) for (const [identity, event] of upstream.latest) this.#enqueue(group, identity, event);
    }
    this.#options.metrics.values.subscriptions++;
    const joined = group;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#options.metrics.values.subscriptions--;
      this.#leave(joined, sink);
    };
  }

  #openUpstream(key: string, live: LivePlan, variables: Record<string, unknown>, authorization: string | undefined): Upstream {
    const { metrics, upstream: connections, log } = this.#options;
    const serviceName = live.primary.serviceName;
    const target = this.#options.subgraphs()[serviceName];
    if (!target) throw new Error(`No routing URL for subgraph "${serviceName}"`);
    const upstream: Upstream = { key, groups: new Set(), latest: new Map(), stop: () => {} };
    this.#upstreams.set(key, upstream);
    metrics.values.upstreamSubscriptions++;
    let open = true;
    const finish = (last: FormattedExecutionResult | null) => {
      if (!open) return;
      open = false;
      this.#dropUpstream(upstream);
      for (const group of upstream.groups) this.#finishGroup(group, last);
    };
    upstream.stop = connections.subscribe(
      target.urls,
      live.public ? undefined : authorization,
      {
        query: live.primary.operation,
        operationName: live.primary.operationName,
        variables,
      },
      {
        next: (event) => {
          metrics.values.eventsReceived++;
          if (!event.data) {
            // A refused subscription: the subgraph's errors (FORBIDDEN, BAD_USER_INPUT, ...) go to
            // every client of this upstream, all of whom share its credentials.
            const errors = formatErrors(event.errors) ?? [{ message: 'The subgraph sent an event without data' }];
            for (const group of upstream.groups) for (const client of group.clients) client.push({ errors });
            return;
          }
          const identity = this.#identity(live, event.data);
          upstream.latest.delete(identity);
          upstream.latest.set(identity, event);
          for (const group of upstream.groups) this.#enqueue(group, identity, event);
        },
        error: (message) => {
          log.warn({ subgraph: serviceName, reason: message }, 'upstream subscription failed');
          finish(errorResult(`The ${serviceName} subgraph ended the subscription: ${message}`, LiveErrorCode.UpstreamFailed));
        },
        complete: () => finish(null),
      },
    );
    return upstream;
  }

  #identity(live: LivePlan, data: Record<string, unknown>): string {
    if (live.replayAliases.length === 0) return '';
    const root = data[live.rootKey] as Record<string, unknown> | null | undefined;
    if (!root) return '';
    return live.replayAliases.map((alias) => String(root[alias] ?? '')).join('\n');
  }

  /** Shapes one event for one group (running `rest`) and sends it to the group's clients, in order. */
  #enqueue(group: Group, identity: string, event: FormattedExecutionResult<Record<string, unknown>, unknown>): void {
    group.tail = group.tail
      .then(async () => {
        if (group.clients.size === 0) return;
        const result = await this.#shape(group, event);
        group.latest.delete(identity);
        group.latest.set(identity, result);
        for (const client of group.clients) client.push(result);
      })
      .catch((error: unknown) => {
        this.#options.log.error({ err: error }, 'shaping a subscription event failed');
        for (const client of group.clients) client.push(errorResult('Internal server error', 'INTERNAL_SERVER_ERROR'));
      });
  }

  async #shape(group: Group, event: FormattedExecutionResult<Record<string, unknown>, unknown>): Promise<FormattedExecutionResult> {
    const { planning, live, request } = group;
    const serviceMap: ServiceMap = { [EVENT_SOURCE]: { process: async () => ({ data: event.data, errors: event.errors as never }) } };
    for (const [name, { dataSource }] of Object.entries(this.#options.subgraphs())) serviceMap[name] = dataSource;
    if (live.hasRest) this.#options.metrics.values.restExecutions++;
    const requestContext = {
      logger: this.#options.log,
      request: { query: request.source, variables: request.variables, operationName: request.operationName },
      context: request.context,
      metrics: {},
      document: request.document,
      source: request.source,
      operationName: request.operationName ?? null,
    };
    const result = await executeQueryPlan(live.plan, serviceMap, requestContext as never, live.operationContext, planning.supergraphSchema, planning.apiSchema);
    const errors = formatErrors(result.errors);
    return errors ? { data: result.data ?? null, errors } : { data: result.data ?? null };
  }

  #leave(group: Group, sink: ClientSink): void {
    group.clients.delete(sink);
    if (group.clients.size > 0) return;
    this.#groups.delete(group.key);
    const upstream = group.upstream;
    upstream.groups.delete(group);
    if (upstream.groups.size === 0) {
      this.#dropUpstream(upstream);
      upstream.stop();
    }
  }

  #dropUpstream(upstream: Upstream): void {
    if (this.#upstreams.get(upstream.key) !== upstream) return;
    this.#upstreams.delete(upstream.key);
    this.#options.metrics.values.upstreamSubscriptions--;
  }

  /** Ends a group after its queued events: `last` (if any) is its final message. */
  #finishGroup(group: Group, last: FormattedExecutionResult | null): void {
    if (this.#groups.get(group.key) === group) this.#groups.delete(group.key);
    group.tail = group.tail.then(() => {
      for (const client of group.clients) {
        if (last) client.push(last);
        client.end();
      }
    });
  }

  #endAll(last: FormattedExecutionResult): void {
    for (const upstream of [...this.#upstreams.values()]) {
      this.#dropUpstream(upstream);
      upstream.stop();
      for (const group of upstream.groups) this.#finishGroup(group, last);
    }
  }

  /**
   * Stops every upstream and refuses new subscriptions, but ends no client subscription: the
   * server then closes the sockets with 1001, and a graphql-ws client that retries sends the same
   * subscriptions to another replica, which answers with the current state first (docs/deploy.md,
   * "Scaling in"). A complete or an error here would end them for good on the client.
   */
  close(): void {
    this.#closed = true;
    for (const upstream of [...this.#upstreams.values()]) {
      this.#dropUpstream(upstream);
      upstream.stop();
    }
  }
}
