/**
 * @apollo/gateway's query plan execution (`executeQueryPlan` in its `executeQueryPlan.js`), with
 * the work that does not depend on the request done once per operation instead of once per
 * request. Apollo's version rebuilds the operation's federation model from its document at every
 * request (`operationFromDocument`), allocates a usage-reporting trace node for every plan node
 * even when nothing reports traces, and walks flatten paths with a copied array per step.
 *
 * This one keeps the operation model per parsed operation (Apollo Server caches parsed documents,
 * so a repeated query text reuses it), which also lets result shaping keep its compiled
 * selections across requests (result-shaping.ts); it builds trace nodes never, and leaves a
 * request that captures traces (Apollo usage reporting, which the gateway disables) to Apollo's
 * own function. Fetches, merges, rewrites, errors and spans are Apollo's, step for step;
 * gateway/test/plan-execution.test.ts runs both on the same plans and subgraph answers. ADR 0027
 * records why.
 */
import { createRequire } from 'node:module';
import type { Span } from '@opentelemetry/api';
import { SpanStatusCode } from '@opentelemetry/api';
import { ERRORS, type Operation, type Schema, assert, errorCodeDef, operationFromDocument } from '@apollo/federation-internals';
import type { GraphQLDataSource, ServiceMap } from '@apollo/gateway';
import {
  type FetchNode,
  type PlanNode,
  type QueryPlan,
  type QueryPlanFieldNode,
  type QueryPlanSelectionNode,
  type ResponsePath,
  evaluateCondition,
} from '@apollo/query-planner';
import {
  type DocumentNode,
  type FieldNode,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  OperationTypeNode,
  type VariableDefinitionNode,
  executeSync,
  visit,
} from 'graphql';
import { computeResponse } from './result-shaping.ts';

const require = createRequire(import.meta.url);

/** What `executeQueryPlan` is given by ApolloGateway (its own types are not all exported). */
type ExecuteQueryPlan = (
  queryPlan: QueryPlan,
  serviceMap: ServiceMap,
  requestContext: RequestContext,
  operationContext: OperationContext,
  supergraphSchema: GraphQLSchema,
  apiSchema: Schema,
  telemetryConfig?: unknown,
) => Promise<ExecutionResult>;

interface OperationContext {
  readonly schema: GraphQLSchema;
  readonly operation: OperationDefinitionNode;
  readonly fragments: Record<string, DocumentNode['definitions'][number]>;
}

interface RequestContext {
  readonly request: { readonly variables?: Record<string, unknown> };
  readonly context: unknown;
  readonly logger?: { error(message: string): void };
  readonly metrics: { captureTraces?: boolean; nonFtv1ErrorPaths?: { subgraph: string; path: unknown }[] };
}

interface ExecutionResult {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLError[];
  extensions?: Record<string, unknown>;
}

type Data = Record<string, unknown>;

/** Where a plan node runs: its path in the answer, the objects there, and the whole answer. */
interface Cursor {
  readonly path: ResponsePath;
  readonly data: unknown;
  readonly fullResult: Data;
}

interface Execution {
  readonly operation: Operation;
  readonly operationContext: OperationContext;
  readonly serviceMap: ServiceMap;
  readonly requestContext: RequestContext;
  readonly supergraphSchema: GraphQLSchema;
  readonly variables: Record<string, unknown> | undefined;
  readonly errors: GraphQLError[];
  readonly telemetryConfig: unknown;
}

const { GraphQLDataSourceRequestKind } = require('@apollo/gateway/dist/datasources/types.js') as {
  GraphQLDataSourceRequestKind: { INCOMING_OPERATION: 'incoming operation' };
};
const apolloExecution = require('@apollo/gateway/dist/executeQueryPlan.js') as {
  executeQueryPlan: ExecuteQueryPlan;
  generateHydratedPaths(parent: ResponsePath, path: ResponsePath, data: unknown, result: ResponsePath[]): void;
};
const { applyRewrites, isObjectOfType } = require('@apollo/gateway/dist/dataRewrites.js') as {
  applyRewrites(schema: GraphQLSchema, rewrites: FetchNode['outputRewrites'], value: unknown): void;
  isObjectOfType(schema: GraphQLSchema, object: Data, typeCondition: string): boolean;
};
const { tracer, OpenTelemetrySpanNames, recordExceptions } = require('@apollo/gateway/dist/utilities/opentelemetry.js') as {
  tracer: { startActiveSpan<T>(name: string, ...rest: [(span: Span) => T] | [{ attributes: Record<string, string> }, (span: Span) => T]): T };
  OpenTelemetrySpanNames: { EXECUTE: string; FETCH: string; POST_PROCESSING: string };
  recordExceptions(span: Span, exceptions: readonly unknown[], config: unknown): void;
};

/** Apollo's own `executeQueryPlan`, for the parity test and for requests that capture traces. */
export const apolloExecuteQueryPlan: ExecuteQueryPlan = apolloExecution.executeQueryPlan;

const hasOwn = Object.prototype.hasOwnProperty;

/** Operation models by API schema (a reload makes a new one) and parsed operation. */
const operations = new WeakMap<Schema, WeakMap<OperationDefinitionNode, Operation>>();

/** Apollo's `operationFromDocument` over the request's operation and fragments, once per parsed operation. */
function operationOf(apiSchema: Schema, operationContext: OperationContext): Operation {
  let bySchema = operations.get(apiSchema);
  if (!bySchema) operations.set(apiSchema, (bySchema = new WeakMap()));
  let operation = bySchema.get(operationContext.operation);
  if (!operation) {
    operation = operationFromDocument(
      apiSchema,
      { kind: Kind.DOCUMENT, definitions: [operationContext.operation, ...Object.values(operationContext.fragments)] } as DocumentNode,
      { validate: false },
    );
    bySchema.set(operationContext.operation, operation);
  }
  return operation;
}

/** The same function as Apollo's `executeQueryPlan`, with per-operation work done once. */
export const executeQueryPlan: ExecuteQueryPlan = async (
  queryPlan,
  serviceMap,
  requestContext,
  operationContext,
  supergraphSchema,
  apiSchema,
  telemetryConfig,
) => {
  // Usage-reporting traces (off in this gateway) and subscriptions (refused there) stay Apollo's.
  if (requestContext.metrics?.captureTraces || queryPlan.node?.kind === 'Subscription')
    return apolloExecuteQueryPlan(queryPlan, serviceMap, requestContext, operationContext, supergraphSchema, apiSchema, telemetryConfig);
  const logger = requestContext.logger ?? console;
  return tracer.startActiveSpan(OpenTelemetrySpanNames.EXECUTE, async (span: Span) => {
    try {
      let operation: Operation;
      try {
        operation = operationOf(apiSchema, operationContext);
      } catch (error) {
        if (error instanceof GraphQLError) return { errors: [error] };
        throw error;
      }
      const variables = requestContext.request.variables;
      const execution: Execution = { operation, operationContext, serviceMap, requestContext, supergraphSchema, variables, errors: [], telemetryConfig };
      const unfilteredData = Object.create(null) as Data;
      if (queryPlan.node) await executeNode(execution, queryPlan.node as PlanNode, { path: [], data: unfilteredData, fullResult: unfilteredData });
      const errors = execution.errors;
      const result = tracer.startActiveSpan(OpenTelemetrySpanNames.POST_PROCESSING, (span: Span): ExecutionResult => {
        let data;
        try {
          let postProcessingErrors;
          ({ data, errors: postProcessingErrors } = computeResponse({
            operation,
            variables,
            input: unfilteredData,
            introspectionHandling: (field) =>
              executeIntrospection(
                operationContext.schema,
                field.expandFragments().toSelectionNode(),
                operationContext.operation.variableDefinitions,
                variables,
              ),
          }));
          if (errors.length === 0 && postProcessingErrors.length > 0) {
            recordExceptions(span, postProcessingErrors, telemetryConfig);
            span.setStatus({ code: SpanStatusCode.ERROR });
            return { extensions: { valueCompletion: postProcessingErrors }, data };
          }
        } catch (error) {
          recordExceptions(span, [error], telemetryConfig);
          span.setStatus({ code: SpanStatusCode.ERROR });
          if (error instanceof GraphQLError) return { errors: [error] };
          if (error instanceof Error) return { errors: [new GraphQLError(error.message, { originalError: error })] };
          logger.error(`Unexpected error during query plan execution: ${error}`);
          return { errors: [new GraphQLError('Unexpected error during query plan execution')] };
        } finally {
          span.end();
        }
        return errors.length === 0 ? { data } : { errors, data };
      });
      if (result.errors) {
        recordExceptions(span, result.errors, telemetryConfig);
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      return result;
    } catch (error) {
      recordExceptions(span, [error], telemetryConfig);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
};

async function executeNode(execution: Execution, node: PlanNode, cursor: Cursor): Promise<void> {
  switch (node.kind) {
    case 'Sequence':
      for (const child of node.nodes) await executeNode(execution, child, cursor);
      return;
    case 'Parallel': {
      const children = new Array<Promise<void>>(node.nodes.length);
      for (let i = 0; i < node.nodes.length; i++) children[i] = executeNode(execution, node.nodes[i], cursor);
      await Promise.all(children);
      return;
    }
    case 'Flatten': {
      const data = flattenResultsAtPath(cursor.data, node.path, 0, null);
      // Apollo's `moveIntoCursor`: nothing runs below a path that leads nowhere.
      if (data) await executeNode(execution, node.node, { path: cursor.path.concat(node.path), data, fullResult: cursor.fullResult });
      return;
    }
    case 'Fetch':
      try {
        await executeFetch(execution, node, cursor);
      } catch (error) {
        execution.errors.push(error as GraphQLError);
      }
      return;
    case 'Condition': {
      const branch = evaluateCondition(node, execution.operation.variableDefinitions, execution.variables) ? node.ifClause : node.elseClause;
      if (branch) await executeNode(execution, branch, cursor);
      return;
    }
    case 'Defer':
      assert(false, '@defer support is not available in the gateway');
  }
}

/**
 * Apollo's `flattenResultsAtPath`. Given `into` (a list being flattened), what the path leads to
 * goes into it, spread one level as `Array.prototype.flatMap` spreads it, instead of into a new
 * array per list and level.
 */
function flattenResultsAtPath(value: unknown, path: ResponsePath, from: number, into: unknown[] | null): unknown {
  let current = value;
  for (let i = from; i < path.length; i++) {
    if (current === undefined || current === null) break;
    const element = path[i];
    if (element === '@') {
      if (!Array.isArray(current)) throw new TypeError('value.flatMap is not a function');
      const flat = into ?? [];
      for (const item of current) flattenResultsAtPath(item, path, i + 1, flat);
      return flat;
    }
    if (typeof element !== 'string') assert(false, `Unexpected ${typeof element} found in path`);
    if (Array.isArray(current)) assert(false, `Unexpected array in result for path element ${element}`);
    current = hasOwn.call(current, element) ? (current as Data)[element] : undefined;
  }
  if (into) {
    if (Array.isArray(current)) for (const entry of current) into.push(entry);
    else into.push(current);
  }
  return current;
}

function executeFetch(execution: Execution, fetch: FetchNode, cursor: Cursor): Promise<void> {
  const service = execution.serviceMap[fetch.serviceName] as GraphQLDataSource | undefined;
  return tracer.startActiveSpan(OpenTelemetrySpanNames.FETCH, { attributes: { service: fetch.serviceName } }, async (span: Span) => {
    try {
      if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);
      const entities: Data[] = Array.isArray(cursor.data) ? cursor.data.filter((entity) => entity !== null && entity !== undefined) : [cursor.data as Data];
      if (entities.length < 1) return;
      const variables = Object.create(null) as Record<string, unknown>;
      if (fetch.variableUsages) {
        const provided = execution.variables;
        for (const name of fetch.variableUsages) {
          if (provided && hasOwn.call(provided, name) && typeof provided[name] !== 'undefined') variables[name] = provided[name];
        }
      }
      const schema = execution.supergraphSchema;
      if (!fetch.requires) {
        const received = await sendOperation(execution, fetch, service, cursor, variables);
        if (received) applyRewrites(schema, fetch.outputRewrites, received);
        for (const entity of entities) deepMerge(entity, received);
        return;
      }
      // Each distinct representation is sent once, as Apollo Router does, and its answer goes to
      // every entity it stands for: Apollo's gateway sends one per entity, and in the public
      // benchmark's query an entity fetch holds each one about 17 times.
      const representations: Data[] = [];
      /** The entity (index in `entities`) of each representation Apollo would have sent. */
      const representationToEntity: number[] = [];
      /** Per representation sent, the positions in Apollo's list that it stands for. */
      const occurrences: number[][] = [];
      const sent = new SentRepresentations(fetch, schema);
      for (let index = 0; index < entities.length; index++) {
        const entity = entities[index];
        let sentIndex = sent.find(entity);
        if (sentIndex === SKIPPED) continue;
        if (sentIndex === undefined) {
          const representation = sent.built ?? executeSelectionSet(schema, entity, fetch.requires);
          if (!representation?.__typename) {
            sent.remember(SKIPPED);
            continue;
          }
          applyRewrites(schema, fetch.inputRewrites, representation);
          sentIndex = sent.remember(representations.push(representation) - 1);
          occurrences.push([]);
        }
        occurrences[sentIndex].push(representationToEntity.push(index) - 1);
      }
      if (representations.length < 1) return;
      if ('representations' in variables) throw new Error(`Variables cannot contain key "representations"`);
      const received = await sendOperation(execution, fetch, service, cursor, { ...variables, representations }, occurrences);
      if (!received) return;
      const receivedEntities = received._entities as (Data | null)[] | undefined;
      if (!(receivedEntities && Array.isArray(receivedEntities))) throw new Error(`Expected "data._entities" in response to be an array`);
      if (receivedEntities.length !== representations.length) throw new Error(`Expected "data._entities" to contain ${representations.length} elements`);
      for (let sentIndex = 0; sentIndex < representations.length; sentIndex++) {
        const receivedEntity = receivedEntities[sentIndex];
        const positions = occurrences[sentIndex];
        if (receivedEntity && !receivedEntity.__typename) receivedEntity.__typename = entities[representationToEntity[positions[0]]].__typename;
        // Rewrites set or rename keys: once per answer is what Apollo's once per entity comes to.
        applyRewrites(schema, fetch.outputRewrites, receivedEntity);
        // Entities with one answer share its objects below them, as they would have held equal copies.
        for (const position of positions) deepMerge(entities[representationToEntity[position]], receivedEntity);
      }
    } catch (error) {
      recordExceptions(span, [error], execution.telemetryConfig);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

async function sendOperation(
  execution: Execution,
  fetch: FetchNode,
  service: GraphQLDataSource,
  cursor: Cursor,
  variables: Record<string, unknown>,
  occurrences?: readonly (readonly number[])[],
): Promise<Data | null | undefined> {
  const requestContext = execution.requestContext;
  const response = await service.process({
    kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION as never,
    request: { query: fetch.operation, variables, operationName: fetch.operationName, http: undefined },
    incomingRequestContext: requestContext as never,
    context: requestContext.context as never,
    document: fetch.operationDocumentNode,
    pathInIncomingRequest: cursor.path as never,
  });
  if (response.errors) {
    const errors = occurrences ? errorsPerOccurrence(response.errors, occurrences) : response.errors;
    const errorPath = lazyErrorPaths(fetch, cursor);
    execution.errors.push(...errors.map((error) => downstreamServiceError(error, fetch.serviceName, errorPath)));
    if (!response.extensions?.ftv1) {
      const errorPaths = errors.map((error) => ({ subgraph: fetch.serviceName, path: error.path }));
      const metrics = requestContext.metrics;
      if (metrics.nonFtv1ErrorPaths) metrics.nonFtv1ErrorPaths.push(...errorPaths);
      else metrics.nonFtv1ErrorPaths = errorPaths;
    }
  }
  return response.data as Data | null | undefined;
}

/**
 * The errors the subgraph would have given had each representation been sent as often as Apollo
 * sends it: an error at `_entities[i]` once per entity that representation `i` stands for, at that
 * entity's position, in the order of the positions; errors elsewhere first, in their order.
 */
function errorsPerOccurrence(errors: readonly GraphQLFormattedError[], occurrences: readonly (readonly number[])[]): GraphQLFormattedError[] {
  const others: GraphQLFormattedError[] = [];
  const atEntities: { position: number; error: GraphQLFormattedError }[] = [];
  for (const error of errors) {
    const path = error.path;
    const sentIndex = path?.[0] === '_entities' ? path[1] : undefined;
    const positions = typeof sentIndex === 'number' ? occurrences[sentIndex] : undefined;
    if (!positions) {
      others.push(error);
      continue;
    }
    for (const position of positions)
      atEntities.push({
        position,
        error: positions.length === 1 && position === sentIndex ? error : { ...error, path: ['_entities', position, ...path!.slice(2)] },
      });
  }
  if (atEntities.length === 0) return others;
  // Array.prototype.sort is stable: errors at one position keep the subgraph's order.
  atEntities.sort((a, b) => a.position - b.position);
  for (const { error } of atEntities) others.push(error);
  return others;
}

/** Apollo's `makeLazyErrorPathGenerator`: an entity error's path, as a path in the answer. */
function lazyErrorPaths(fetch: FetchNode, cursor: Cursor): (path: GraphQLFormattedError['path']) => ResponsePath | undefined {
  let hydratedPaths: ResponsePath[] | undefined;
  return (errorPath) => {
    if (fetch.requires && typeof errorPath?.[1] === 'number') {
      if (!hydratedPaths) {
        hydratedPaths = [];
        apolloExecution.generateHydratedPaths([], cursor.path, cursor.fullResult, hydratedPaths);
      }
      return [...(hydratedPaths[errorPath[1]] ?? []), ...errorPath.slice(2)];
    }
    return errorPath ? [...cursor.path, ...errorPath.slice()] : undefined;
  };
}

/** Apollo's `downstreamServiceError`. */
function downstreamServiceError(
  originalError: GraphQLFormattedError,
  serviceName: string,
  errorPath: (path: GraphQLFormattedError['path']) => ResponsePath | undefined,
): GraphQLError {
  const message = originalError.message || `Error while fetching subquery from service "${serviceName}"`;
  const extensions = originalError.extensions;
  const options = { originalError: originalError as Error, path: errorPath(originalError.path), extensions: { ...extensions, serviceName } };
  const codeDef = errorCodeDef(originalError as GraphQLError);
  if (!codeDef && extensions?.code) return new GraphQLError(message, options);
  return (codeDef ?? ERRORS.DOWNSTREAM_SERVICE_ERROR).err(message, options);
}

/** What {@link SentRepresentations.find} gives for an entity that has no representation. */
const SKIPPED = -1;

/** A fetch's `requires` as inline fragments of leaf fields (every `@key`'s, most `@requires`'): response names per fragment. */
interface FlatRequires {
  readonly fragments: readonly { readonly typeCondition: string; readonly fields: readonly string[] }[];
  /** Whether fragment `i` applies, by `__typename`: `isObjectOfType` depends on nothing else. */
  readonly applies: Map<unknown, boolean[]>;
}

const flatRequiresByFetch = new WeakMap<FetchNode, FlatRequires | null>();

function flatRequiresOf(fetch: FetchNode): FlatRequires | null {
  let flat = flatRequiresByFetch.get(fetch);
  if (flat !== undefined) return flat;
  const fragments: FlatRequires['fragments'][number][] = [];
  flat = { fragments, applies: new Map() };
  for (const selection of fetch.requires!) {
    // Apollo skips an inline fragment without a type condition, and a nested selection needs the general walk.
    if (selection.kind !== Kind.INLINE_FRAGMENT || selection.selections.some((field) => field.kind !== Kind.FIELD || field.selections)) {
      flat = null;
      break;
    }
    if (!selection.typeCondition) continue;
    if (fragments.length === 30) {
      flat = null;
      break;
    }
    fragments.push({
      typeCondition: selection.typeCondition,
      fields: selection.selections.map((field) => (field as QueryPlanFieldNode).alias ?? (field as QueryPlanFieldNode).name),
    });
  }
  flatRequiresByFetch.set(fetch, flat);
  return flat;
}

type Trie = Map<unknown, Trie | number>;

/**
 * The representations one fetch sends, found again for an entity without building its
 * representation: for `requires` of inline fragments of leaf fields (see {@link FlatRequires}), by
 * the fragments that contribute and their values in a trie of maps; otherwise, and for values
 * that are objects, by the representation's JSON.
 */
class SentRepresentations {
  readonly #schema: GraphQLSchema;
  readonly #requires: readonly QueryPlanSelectionNode[];
  readonly #flat: FlatRequires | null;
  readonly #trie: Trie = new Map();
  readonly #json = new Map<string, number>();
  /** Where {@link remember} stores what {@link find} did not find. */
  #slot: { readonly trie: Trie; readonly key: unknown } | { readonly json: string } | null = null;
  /** The representation of the entity {@link find} last did not find, when it had to build it. */
  built: Data | undefined;

  constructor(fetch: FetchNode, schema: GraphQLSchema) {
    this.#schema = schema;
    this.#requires = fetch.requires!;
    this.#flat = flatRequiresOf(fetch);
  }

  /** The index of the representation sent for `entity`, {@link SKIPPED}, or undefined when it is new. */
  find(entity: Data): number | undefined {
    this.built = undefined;
    const flat = this.#flat;
    if (!flat) return this.#findByJson(entity);
    const fragments = flat.fragments;
    const typename = entity.__typename;
    let applies = flat.applies.get(typename);
    if (!applies) flat.applies.set(typename, (applies = fragments.map((fragment) => isObjectOfType(this.#schema, entity, fragment.typeCondition))));
    // Which fragments contribute (Apollo drops a fragment with a field missing), then their values.
    let mask = 0;
    for (let f = 0; f < fragments.length; f++) {
      if (!applies[f]) continue;
      let complete = true;
      for (const field of fragments[f].fields) {
        if (!hasOwn.call(entity, field) || entity[field] === undefined) {
          complete = false;
          break;
        }
      }
      if (complete) mask |= 1 << f;
    }
    let trie = this.#trie;
    let key: unknown = mask;
    for (let f = 0; f < fragments.length; f++) {
      if (!(mask & (1 << f))) continue;
      for (const field of fragments[f].fields) {
        const value = entity[field];
        if (value !== null && typeof value === 'object') return this.#findByJson(entity);
        let next = trie.get(key);
        if (next === undefined) trie.set(key, (next = new Map()));
        trie = next as Trie;
        key = value;
      }
    }
    const found = trie.get(key) as number | undefined;
    if (found === undefined) this.#slot = { trie, key };
    return found;
  }

  #findByJson(entity: Data): number | undefined {
    const representation = executeSelectionSet(this.#schema, entity, this.#requires);
    if (!representation?.__typename) return SKIPPED;
    const json = JSON.stringify(representation);
    const found = this.#json.get(json);
    if (found === undefined) {
      this.#slot = { json };
      this.built = representation;
    }
    return found;
  }

  /** Remembers `index` for the entity {@link find} last did not find; returns it. */
  remember(index: number): number {
    const slot = this.#slot!;
    if ('trie' in slot) slot.trie.set(slot.key, index);
    else this.#json.set(slot.json, index);
    this.#slot = null;
    return index;
  }
}

/** Apollo's `executeSelectionSet`: an entity's representation, as the fetch's `requires` selects it. */
function executeSelectionSet(schema: GraphQLSchema, source: Data | null, selections: readonly QueryPlanSelectionNode[]): Data | null {
  if (source === null) return null;
  const result = Object.create(null) as Data;
  for (const selection of selections) {
    if (selection.kind === Kind.FIELD) {
      const responseName = selection.alias ?? selection.name;
      const nested = selection.selections;
      if (!hasOwn.call(source, responseName) || typeof source[responseName] === 'undefined') return null;
      const value = source[responseName];
      if (Array.isArray(value)) result[responseName] = value.map((item) => (nested ? executeSelectionSet(schema, item, nested) : item));
      else if (nested) result[responseName] = executeSelectionSet(schema, value as Data | null, nested);
      else result[responseName] = value;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      if (!selection.typeCondition || !source) continue;
      if (isObjectOfType(schema, source, selection.typeCondition)) deepMerge(result, executeSelectionSet(schema, source, selection.selections));
    }
  }
  return result;
}

function isObject(value: unknown): value is Data {
  return value !== undefined && value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Apollo's `deepMerge`. */
function deepMerge(target: Data, source: unknown): Data {
  if (source === undefined || source === null) return target;
  const from = source as Data;
  // for...in without an array of keys per object: subgraph answers are plain JSON objects, whose
  // enumerable keys are their own, in Object.keys' order.
  for (const key in from) {
    if (!hasOwn.call(from, key)) continue;
    const value = from[key];
    if (value === undefined) continue;
    // Apollo's `defineOwn`: a key such as `constructor` becomes the object's own, not its prototype's.
    if (!hasOwn.call(target, key) && key in target)
      Object.defineProperty(target, key, { configurable: true, enumerable: true, value: undefined, writable: true });
    const existing = target[key];
    if (existing && isObject(value)) {
      deepMerge(existing as Data, value);
    } else if (Array.isArray(value) && Array.isArray(existing) && value.length === existing.length) {
      for (let i = 0; i < value.length; i++) {
        if (isObject(existing[i]) && isObject(value[i])) deepMerge(existing[i], value[i]);
        else existing[i] = value[i];
      }
    } else {
      target[key] = value;
    }
  }
  return target;
}

/** Apollo's `executeIntrospection`: an introspection field of the operation, answered from the API schema. */
function executeIntrospection(
  schema: GraphQLSchema,
  selection: FieldNode,
  variableDefinitions: readonly VariableDefinitionNode[] | undefined,
  variableValues: Record<string, unknown> | undefined,
): unknown {
  const used = new Set<string>();
  visit(selection, { Variable: ({ name }) => void used.add(name.value) });
  const definitions = variableDefinitions?.filter((definition) => used.has(definition.variable.name.value));
  assert(
    used.size === (definitions?.length ?? 0),
    () => `Should have found all used variables ${[...used]} in definitions ${JSON.stringify(variableDefinitions)}`,
  );
  const document: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: [
      {
        kind: Kind.OPERATION_DEFINITION,
        operation: OperationTypeNode.QUERY,
        variableDefinitions: definitions,
        selectionSet: { kind: Kind.SELECTION_SET, selections: [selection] },
      },
    ],
  };
  const { data, errors } = executeSync({ schema, document, rootValue: {}, variableValues });
  assert(!errors || errors.length === 0, () => `Introspection query for ${JSON.stringify(selection)} should not have failed but got ${JSON.stringify(errors)}`);
  assert(data, () => `Introspection query for ${JSON.stringify(selection)} should not have failed`);
  const responseName = selection.alias?.value ?? selection.name.value;
  return hasOwn.call(data, responseName) ? data[responseName] : undefined;
}

/** Apollo's module, as ApolloGateway's executor requires it at every request. */
const installed = apolloExecution as { executeQueryPlan: ExecuteQueryPlan };

/** Makes @apollo/gateway execute query plans with {@link executeQueryPlan}. */
export function installPlanExecution(): void {
  installed.executeQueryPlan = executeQueryPlan;
}
