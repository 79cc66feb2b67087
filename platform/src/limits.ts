/**
 * Operation limits: what a GraphQL document may ask for before any work is spent on it. The gateway
 * applies all of them before planning, on HTTP and on graphql-ws alike; each subgraph applies its own
 * depth and token limits, so a caller that reaches it directly cannot skip them (docs/security.md).
 *
 * - tokens: graphql-js's own parser limit (`maxTokens`, what GraphQL Armor's max-tokens emulates), so
 *   an oversized document is refused while it is parsed, in the one parse. Armor's Apollo plugin for
 *   it throws from `parsingDidStart`, which Apollo Server 5 answers with a 500 and an error log;
 * - depth, aliases and directives: GraphQL Armor's validation rules;
 * - cost: graphql-query-complexity with {@link listCostEstimator}, which multiplies by list sizes
 *   (GraphQL Armor's cost limit does not).
 *
 * Every refusal is HTTP 400 with its own `extensions.code` and `extensions.limit`.
 */
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ApolloServerPlugin, BaseContext, GraphQLRequestContextDidResolveOperation } from '@apollo/server';
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationContext,
  type ValidationRule,
  Kind,
  getNullableType,
  isListType,
  parse,
  specifiedRules,
  validate,
  visit,
} from 'graphql';
import { getVariableValues } from 'graphql/execution/values.js';
import { type ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import { z } from 'zod';
import type { Config } from './config.ts';
import { ConfigError, integer, oneOf, parseSettings } from './settings.ts';
import { ErrorCode } from './errors.ts';

/** What the gateway allows one operation. */
export interface OperationLimits {
  /** Deepest field nesting, fragments flattened (`GRAPHQL_MAX_DEPTH`). */
  readonly maxDepth: number;
  /** Aliased fields per operation, fragments included (`GRAPHQL_MAX_ALIASES`). */
  readonly maxAliases: number;
  /** Directives per operation, fragments included (`GRAPHQL_MAX_DIRECTIVES`). */
  readonly maxDirectives: number;
  /** Lexical tokens per document (`GRAPHQL_MAX_TOKENS`). */
  readonly maxTokens: number;
  /** Highest cost per operation, see {@link listCostEstimator} (`GRAPHQL_MAX_COST`). */
  readonly maxCost: number;
  /** Items assumed for a list without `first`/`last`, e.g. an order's items (`GRAPHQL_COST_LIST_SIZE`). */
  readonly assumedListSize: number;
}

/** What a subgraph allows one operation, whoever sends it. */
export interface SubgraphLimits {
  /** `SUBGRAPH_MAX_DEPTH`. */
  readonly maxDepth: number;
  /** `SUBGRAPH_MAX_TOKENS`. */
  readonly maxTokens: number;
}

/**
 * Defaults of {@link OperationLimits}. Every operation of `schema/operations/`, the storefront's SDK
 * and Apollo Sandbox passes at half of each (the heaviest, MyOrders at 100 a page, costs 3,501), and
 * the worst documents they accept plan in tens of milliseconds (gateway/test/limits-defaults.test.ts).
 * The token limit also bounds graphql-js's validation, whose field-merging check grows with the
 * square of repeated fields.
 */
export const DEFAULT_OPERATION_LIMITS: OperationLimits = {
  maxDepth: 12,
  maxAliases: 15,
  maxDirectives: 10,
  maxTokens: 1_000,
  maxCost: 10_000,
  assumedListSize: 10,
};

/**
 * Defaults of {@link SubgraphLimits}: the gateway's fetches of an accepted operation are at most two
 * levels deeper (`_entities` and an inline fragment) and about as long as the part of the client's
 * document they carry; fragments the gateway expands may lengthen them, hence the generous token limit.
 */
export const DEFAULT_SUBGRAPH_LIMITS: SubgraphLimits = {
  maxDepth: 32,
  maxTokens: 15_000,
};

/** The refusal codes of this module. */
const LIMIT_CODES: ReadonlySet<unknown> = new Set([
  ErrorCode.DepthLimitExceeded,
  ErrorCode.AliasLimitExceeded,
  ErrorCode.DirectiveLimitExceeded,
  ErrorCode.TokenLimitExceeded,
  ErrorCode.CostLimitExceeded,
]);

/**
 * The gateway's operation limits, `EDGE_LIMITS` and `GRAPHQL_*`: declared here, beside the limits,
 * and part of the gateway's settings (gateway/src/settings.ts).
 */
export const operationLimitSettings = z.object({
  EDGE_LIMITS: oneOf(['on', 'off'], { default: 'on' }).describe(
    "`off` turns off the gateway's operation limits, rate limits and caps (for benchmarks); refused in production",
  ),
  GRAPHQL_MAX_DEPTH: integer({ default: DEFAULT_OPERATION_LIMITS.maxDepth, min: 1, max: 1_000 }).describe(
    'deepest field nesting of an operation at the gateway (`DEPTH_LIMIT_EXCEEDED`)',
  ),
  GRAPHQL_MAX_ALIASES: integer({ default: DEFAULT_OPERATION_LIMITS.maxAliases, min: 0, max: 10_000 }).describe(
    'aliases per operation (`ALIAS_LIMIT_EXCEEDED`)',
  ),
  GRAPHQL_MAX_DIRECTIVES: integer({ default: DEFAULT_OPERATION_LIMITS.maxDirectives, min: 0, max: 10_000 }).describe(
    'directives per operation (`DIRECTIVE_LIMIT_EXCEEDED`)',
  ),
  GRAPHQL_MAX_TOKENS: integer({ default: DEFAULT_OPERATION_LIMITS.maxTokens, min: 10, max: 1_000_000 }).describe(
    'tokens per document, checked while parsing (`TOKEN_LIMIT_EXCEEDED`)',
  ),
  GRAPHQL_MAX_COST: integer({ default: DEFAULT_OPERATION_LIMITS.maxCost, min: 1, max: 100_000_000 }).describe(
    'cost per operation, list sizes included (`COST_LIMIT_EXCEEDED`)',
  ),
  GRAPHQL_COST_LIST_SIZE: integer({ default: DEFAULT_OPERATION_LIMITS.assumedListSize, min: 1, max: 10_000 }).describe(
    'items the cost counts for a list without `first`/`last`',
  ),
});

/** The parsed {@link operationLimitSettings}. */
export type OperationLimitSettings = z.output<typeof operationLimitSettings>;

/** A subgraph's own limits, `SUBGRAPH_MAX_*`, whatever `EDGE_LIMITS` says: platform settings. */
export const subgraphLimitSettings = z.object({
  SUBGRAPH_MAX_DEPTH: integer({ default: DEFAULT_SUBGRAPH_LIMITS.maxDepth, min: 1, max: 10_000 }).describe("a subgraph's own depth limit, whoever calls it"),
  SUBGRAPH_MAX_TOKENS: integer({ default: DEFAULT_SUBGRAPH_LIMITS.maxTokens, min: 10, max: 10_000_000 }).describe("a subgraph's own token limit"),
});

/**
 * Whether the gateway applies its operation limits (and its rate limits): `EDGE_LIMITS` is `on`
 * (the default) or `off`, which benchmarks use to measure what the limits cost. Production refuses
 * `off` with a {@link ConfigError}. `settings` defaults to those parsed from `config.vars`.
 */
export function edgeLimitsEnabled(
  config: Pick<Config, 'env' | 'vars'>,
  settings: Pick<OperationLimitSettings, 'EDGE_LIMITS'> = parseSettings(operationLimitSettings, config.vars),
): boolean {
  if (settings.EDGE_LIMITS === 'on') return true;
  // Not a rule of the schema: a configuration's env is what decides (tests set it apart from NODE_ENV).
  if (config.env === 'production') throw new ConfigError('EDGE_LIMITS=off is refused in production: the edge would accept any operation');
  return false;
}

/** The gateway's operation limits from `GRAPHQL_MAX_*`; null when `EDGE_LIMITS=off`. `settings` as for {@link edgeLimitsEnabled}. */
export function gatewayLimits(
  config: Pick<Config, 'env' | 'vars'>,
  settings: OperationLimitSettings = parseSettings(operationLimitSettings, config.vars),
): OperationLimits | null {
  if (!edgeLimitsEnabled(config, settings)) return null;
  return {
    maxDepth: settings.GRAPHQL_MAX_DEPTH,
    maxAliases: settings.GRAPHQL_MAX_ALIASES,
    maxDirectives: settings.GRAPHQL_MAX_DIRECTIVES,
    maxTokens: settings.GRAPHQL_MAX_TOKENS,
    maxCost: settings.GRAPHQL_MAX_COST,
    assumedListSize: settings.GRAPHQL_COST_LIST_SIZE,
  };
}

/** A subgraph's own limits from `SUBGRAPH_MAX_*` ({@link subgraphLimitSettings}). */
export function subgraphLimits(config: Pick<Config, 'vars'>): SubgraphLimits {
  const settings = parseSettings(subgraphLimitSettings, config.vars);
  return { maxDepth: settings.SUBGRAPH_MAX_DEPTH, maxTokens: settings.SUBGRAPH_MAX_TOKENS };
}

/** A refusal with its code and the limit it broke (`extensions.limit`). */
export function limitError(code: ErrorCode, message: string, limit: number, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { ...extensions, code, limit } });
}

/** Reports GraphQL Armor's refusal with our code; Armor prefixes its messages with "Syntax Error: ". */
function reportAs(code: ErrorCode, limit: number) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(limitError(code, error.message.replace(/^Syntax Error: /, ''), limit));
  };
}

/**
 * GraphQL Armor's depth, alias and directive rules, each refusing with its own code. Depth counts
 * fields only (fragments flattened) and skips introspection's `__schema`. Pass them to Apollo
 * Server's `validationRules` (so a document is checked once, then cached) or to graphql's `validate`.
 */
export function limitValidationRules(limits: Partial<Pick<OperationLimits, 'maxDepth' | 'maxAliases' | 'maxDirectives'>>): ValidationRule[] {
  const off = { enabled: false } as const;
  const armor = new ApolloArmor({
    blockFieldSuggestion: off,
    costLimit: off,
    maxTokens: off,
    maxDepth:
      limits.maxDepth === undefined
        ? off
        : {
            n: limits.maxDepth,
            flattenFragments: true,
            exposeLimits: true,
            propagateOnRejection: false,
            onReject: [reportAs(ErrorCode.DepthLimitExceeded, limits.maxDepth)],
          },
    maxAliases:
      limits.maxAliases === undefined
        ? off
        : {
            n: limits.maxAliases,
            exposeLimits: true,
            propagateOnRejection: false,
            onReject: [reportAs(ErrorCode.AliasLimitExceeded, limits.maxAliases)],
          },
    maxDirectives:
      limits.maxDirectives === undefined
        ? off
        : {
            n: limits.maxDirectives,
            exposeLimits: true,
            propagateOnRejection: false,
            onReject: [reportAs(ErrorCode.DirectiveLimitExceeded, limits.maxDirectives)],
          },
  });
  return armor.protect().validationRules;
}

/** graphql-js's message for a document over `maxTokens` (its own wording, "more that"). */
const TOKEN_LIMIT_MESSAGE = /^Syntax Error: Document contains more th[ae]t (\d+) tokens/;

/** The token refusal for a parse error of graphql-js, or null when the error is another syntax error. */
export function tokenLimitError(error: unknown): GraphQLError | null {
  const match = error instanceof Error ? TOKEN_LIMIT_MESSAGE.exec(error.message) : null;
  if (!match) return null;
  const limit = Number(match[1]);
  return limitError(ErrorCode.TokenLimitExceeded, `Token limit of ${limit} exceeded.`, limit);
}

/** Relay connections: their page (`edges`, `nodes`) is already counted by the connection's `first`/`last`. */
function isConnection(typeName: string): boolean {
  return typeName.endsWith('Connection');
}

/**
 * The cost of a field is 1 plus the cost of its selection times the number of items it can hold:
 * `first` or `last` when given (variables and schema defaults included; at least 1), else
 * `assumedListSize` for a list. A connection's own lists are counted by its `first`. So the cost is about the number of
 * values the response can hold at worst: `products(first: 100) { edges { node { sku } } }` costs
 * 1 + 100 × 3 = 301. Introspection (`__schema`, `__type`, `__typename`) costs nothing: the gateway
 * answers it without any subgraph.
 */
export function listCostEstimator(assumedListSize: number): ComplexityEstimator {
  return ({ type, field, args, childComplexity }) => {
    if (field.name.startsWith('__')) return 0;
    const pages = [args.first, args.last].filter((n): n is number => typeof n === 'number');
    const paginated = field.args.some((arg) => arg.name === 'first' || arg.name === 'last');
    let size = 1;
    // At least 1: `first: 0` must not make a whole selection free (the planner still plans it).
    if (pages.length) size = Math.max(1, ...pages);
    else if (paginated || (isListType(getNullableType(field.type)) && !isConnection(type.name))) size = assumedListSize;
    return 1 + size * childComplexity;
  };
}

/** graphql-query-complexity's refusal of a document whose fragments expand beyond its node budget. */
const TOO_MANY_NODES = 'Query exceeds the maximum allowed number of nodes.';

/** A cost check: the refusal for an operation with its variables, or null when it is within the limit. */
export type CostLimiter = (
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
) => GraphQLError | null;

/** Arguments whose variables change an operation's cost: page sizes and `@include`/`@skip` conditions. */
const COST_ARGUMENTS: ReadonlySet<string> = new Set(['first', 'last', 'if']);

/** The variables that the cost of `document` depends on. */
function costVariables(document: DocumentNode): readonly string[] {
  const names = new Set<string>();
  visit(document, {
    Argument(node) {
      if (node.value.kind === Kind.VARIABLE && COST_ARGUMENTS.has(node.name.value)) names.add(node.value.name.value);
    },
  });
  return [...names];
}

/** Costs remembered per document and cost-relevant variables; beyond this many per document, start again. */
const MAX_COSTS_PER_DOCUMENT = 256;

/**
 * A {@link CostLimiter} for `limits`. graphql-query-complexity takes a tenth of a millisecond or more
 * per operation, so each cost is computed once per document (as cached by Apollo Server and the live
 * endpoint) and values of the variables it depends on (`first`, `last`, `if`), then remembered.
 * Variables that do not fit the operation are not judged here: the gateway refuses them itself
 * before planning, and graphql-ws coerces them first.
 */
export function costLimiter(limits: Pick<OperationLimits, 'maxCost' | 'assumedListSize'>): CostLimiter {
  const estimators = [listCostEstimator(limits.assumedListSize)];
  const cache = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, { variables: readonly string[]; costs: Map<string, number> }>>();
  const refuse = (message: string, cost?: number) => limitError(ErrorCode.CostLimitExceeded, message, limits.maxCost, cost === undefined ? {} : { cost });
  return (schema, document, operation, variables = {}) => {
    let documents = cache.get(schema);
    if (!documents) cache.set(schema, (documents = new WeakMap()));
    let entry = documents.get(document);
    if (!entry) documents.set(document, (entry = { variables: costVariables(document), costs: new Map() }));
    const key = `${operation.name?.value ?? ''}:${entry.variables.length ? JSON.stringify(entry.variables.map((name) => variables[name])) : ''}`;
    let cost = entry.costs.get(key);
    if (cost === undefined) {
      try {
        cost = getComplexity({ schema, query: document, operationName: operation.name?.value, variables, estimators });
      } catch (error) {
        if ((error as Error).message === TOO_MANY_NODES)
          return refuse(`Query cost limit of ${limits.maxCost} exceeded: its fragments expand to too many fields.`);
        if (getVariableValues(schema, operation.variableDefinitions ?? [], variables).errors) return null;
        return new GraphQLError((error as Error).message, { extensions: { code: ErrorCode.BadUserInput } });
      }
      if (entry.costs.size >= MAX_COSTS_PER_DOCUMENT) entry.costs.clear();
      entry.costs.set(key, cost);
    }
    return cost <= limits.maxCost ? null : refuse(`Query cost limit of ${limits.maxCost} exceeded, found ${cost}.`, cost);
  };
}

/** Whether `error` is one of this module's refusals. */
export function isLimitError(error: GraphQLError): boolean {
  return LIMIT_CODES.has(error.extensions.code);
}

/** The refusal of a request whose `operationName` names no operation of its document, or is missing. */
export function operationResolutionError(operationName: string | null | undefined): GraphQLError {
  return new GraphQLError(
    operationName ? `Unknown operation named "${operationName}".` : 'The document has several operations: name the one to run with operationName.',
    { extensions: { code: ErrorCode.OperationResolutionFailure } },
  );
}

/** `error` answered with HTTP 400 by Apollo Server. */
function status400(error: GraphQLError): GraphQLError {
  return new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 400 } } });
}

/**
 * Parses `query` as Apollo Server does over HTTP, with the token limit: the document, or the error
 * to send (TOKEN_LIMIT_EXCEEDED, or GRAPHQL_PARSE_FAILED for any other syntax error).
 */
export function parseWithLimit(query: string, maxTokens: number | undefined): DocumentNode | GraphQLError {
  try {
    return parse(query, maxTokens === undefined ? undefined : { maxTokens });
  } catch (error) {
    return (
      tokenLimitError(error) ??
      new GraphQLError((error as Error).message, {
        source: (error as GraphQLError).source,
        positions: (error as GraphQLError).positions,
        extensions: { code: 'GRAPHQL_PARSE_FAILED' },
      })
    );
  }
}

/**
 * Validates `document` with graphql's rules and `rules` (from {@link limitValidationRules}): limit
 * refusals keep their codes, the rest are GRAPHQL_VALIDATION_FAILED, as over HTTP.
 */
export function validateWithLimits(schema: GraphQLSchema, document: DocumentNode, rules: readonly ValidationRule[]): GraphQLError[] {
  return validate(schema, document, [...specifiedRules, ...rules]).map((error) =>
    isLimitError(error)
      ? error
      : new GraphQLError(error.message, {
          nodes: error.nodes,
          source: error.source,
          positions: error.positions,
          extensions: { ...error.extensions, code: ErrorCode.GraphQLValidationFailed },
        }),
  );
}

/**
 * The Apollo Server side of the limits: with `limits` (the gateway) the cost of the resolved
 * operation is checked before it is executed, so before the gateway plans it; a missing or unknown
 * `operationName` is refused with OPERATION_RESOLUTION_FAILURE (400) before the gateway sees it;
 * and refusals of the validation rules and of the parser's token limit get their own codes back
 * (Apollo Server reports every validation error as GRAPHQL_VALIDATION_FAILED, every parse error as
 * GRAPHQL_PARSE_FAILED). Use it with {@link limitValidationRules} and `parseOptions.maxTokens`.
 */
export function operationLimitsPlugin<TContext extends BaseContext>(
  limits: Pick<OperationLimits, 'maxCost' | 'assumedListSize'> | null,
): ApolloServerPlugin<TContext> {
  const costOf = limits ? costLimiter(limits) : null;
  const listener = {
    async didResolveOperation(request: GraphQLRequestContextDidResolveOperation<TContext>) {
      if (!request.operation) throw status400(operationResolutionError(request.request.operationName));
      if (!costOf) return;
      const refused = costOf(request.schema, request.document, request.operation, request.request.variables);
      if (refused) throw status400(refused);
    },
    async didEncounterErrors({ errors }: { readonly errors: readonly GraphQLError[] }) {
      for (const error of errors) {
        // Not every error here is a GraphQLError: a subgraph call that failed to connect arrives as
        // the fetcher's Error, which Apollo turns into INTERNAL_SERVER_ERROR after this hook.
        const extensions = error.extensions as Record<string, unknown> | undefined;
        if (!extensions) continue;
        const original = error.originalError;
        if (original instanceof GraphQLError && isLimitError(original)) {
          // Apollo Server's ValidationError replaced the rule's code.
          extensions.code = original.extensions.code;
        } else if (extensions.code === 'GRAPHQL_PARSE_FAILED') {
          const tokens = tokenLimitError(error);
          if (tokens) {
            error.message = tokens.message;
            Object.assign(extensions, tokens.extensions);
          }
        }
      }
    },
  };
  return { requestDidStart: async () => listener };
}
