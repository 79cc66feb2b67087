/**
 * SwiftCart's gateway: Apollo Server 5 executing a static supergraph with @apollo/gateway, served
 * by the same node:http integration as every subgraph (platform `createHttpHandler` + `listen`:
 * same /healthz, /readyz, body limit and shutdown). See docs/adr/0001-gateway.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, type ApolloServerPlugin, type BaseContext } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled, ApolloServerPluginUsageReportingDisabled } from '@apollo/server/plugin/disabled';
// The platform's modules one by one, not its index: the index also loads MikroORM and kafkajs,
// which the gateway never uses (~50 MB of resident memory and slower start-up).
import { type Config, type ServiceName, loadConfig } from '@swiftcart/platform/config';
import { parseSettings } from '@swiftcart/platform/settings';
import { ANONYMOUS, type Viewer } from '@swiftcart/platform/auth';
import { errorFormatter } from '@swiftcart/platform/errors';
import { METRICS_PATH, createProcessMetrics, graphqlMetricsPlugin, measureHttp, metricsRoute } from '@swiftcart/platform/metrics';
import { gatewayCredentialHeaders } from '@swiftcart/platform/gateway-credential';
import { PATHS, type RouteHandler, authorizationOf, createHttpHandler, listen, sendJson, viewerOr401 } from '@swiftcart/platform/http';
import { InputGuard, inputGuardPlugin, inputLimits } from '@swiftcart/platform/input';
import { gatewayLimits, limitValidationRules, operationLimitsPlugin } from '@swiftcart/platform/limits';
import { type Logger, createLogger } from '@swiftcart/platform/logger';
import { edgeLimitsEnabled } from '@swiftcart/platform/limits';
import { overloadedStatusPlugin } from './overload.ts';
import { Edge } from './edge.ts';
import { SubgraphDataSource } from './data-source.ts';
import { type DedupCounts, DedupStats, inboundSharing, sharingFetcher } from './dedup.ts';
import { EntityBatcher, registerEntityBatchMetrics } from './entity-batcher.ts';
import { type Fetcher, createKeepAliveFetcher } from './fetcher.ts';
import { installPlanExecution } from './plan-execution.ts';
import { installResultShaping } from './result-shaping.ts';
import { type LiveServerSettings, startLiveServer } from './live-server.ts';
import { LiveMetrics, type LiveMetricsSnapshot } from './live-metrics.ts';
import { LiveSubscriptions } from './subscriptions.ts';
import { OriginPolicy } from './origins.ts';
import { EdgeRateLimits, rateLimitSettings } from './rate-limits.ts';
import { SANDBOX_PATH, createSandbox, sandboxEndpoints } from './sandbox.ts';
import { EXPLORER_PATH } from './explorer.ts';
import { gatewaySettings, liveSettingsOf } from './settings.ts';
import { ReplicaSet, spreadingFetcher } from './replicas.ts';
import { SupergraphError, readSupergraph, validateOverrides } from './supergraph.ts';
import { UpstreamConnections } from './upstream.ts';
import { PersistedDocumentStore, TrustedDocuments, notInListResponse, sentDocument } from './trusted-documents.ts';

export { SupergraphError } from './supergraph.ts';
export type { Fetcher } from './fetcher.ts';
export type { LiveServerSettings } from './live-server.ts';
export type { LiveMetricsSnapshot } from './live-metrics.ts';

/** What every gateway request carries: the caller, and the header to pass on to subgraphs. */
export interface GatewayContext extends BaseContext {
  readonly viewer: Viewer;
  /** The `Authorization` header exactly as received, or undefined when none was sent. */
  readonly authorization: string | undefined;
}

/** How to start the gateway; everything defaults to the environment's configuration. */
export interface StartGatewayOptions {
  readonly config?: Config;
  /** Overrides `config.gatewayPort`; 0 picks a free port (tests). */
  readonly port?: number;
  /** Overrides `config.supergraphPath` (SUPERGRAPH_PATH). */
  readonly supergraphPath?: string;
  /**
   * Routing URL per subgraph name (the `name` of `@join__graph`), or one per replica, taking
   * precedence over `config.subgraphUrls` (PRODUCT_URL, ...), which take precedence over the
   * supergraph file. Calls spread over replicas (replicas.ts).
   */
  readonly subgraphUrls?: Readonly<Partial<Record<ServiceName, string | readonly string[]>> & Record<string, string | readonly string[] | undefined>>;
  /** Replaces the keep-alive subgraph client (tests count calls with it). The caller closes it. */
  readonly fetcher?: Fetcher;
  /** Defaults to a `gateway` logger at `config.logLevel`. */
  readonly log?: Logger;
  /** Overrides the live endpoint's settings from the environment (LIVE_CLIENT_QUEUE_LIMIT, ...). */
  readonly live?: Partial<LiveServerSettings>;
  /**
   * Outside production, build the offline explorer (explorer.ts) in the background when it is
   * missing or stale. The gateway process does (main.ts); gateways inside tests do not, so that
   * they do not all build it at once.
   */
  readonly buildExplorer?: boolean;
}

/** A started gateway; dispose it to shut it down gracefully. */
export interface RunningGateway extends AsyncDisposable {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly url: string;
  /** Apollo Sandbox, e.g. http://127.0.0.1:4000/; null in production, which has no landing page. */
  readonly sandboxUrl: string | null;
  /** The offline explorer (GraphiQL), e.g. http://127.0.0.1:4000/graphiql; null in production. */
  readonly explorerUrl: string | null;
  readonly port: number;
  /** Where each subgraph of the supergraph is routed. */
  readonly subgraphs: Readonly<Record<string, string>>;
  /** The live-update figures also served at `GET /metrics`. */
  metrics(): LiveMetricsSnapshot;
  /** Requests deduplicated so far, by scope and outcome (dedup.ts; also served at `GET /metrics`). */
  dedup(): DedupCounts;
  /** Entity fetches per subgraph so far, and the requests that carried them (entity-batcher.ts). */
  entityBatches(): Record<string, EntityBatcher['stats']>;
  /**
   * Reads the supergraph file again and, when it changed, serves the new schema; live
   * subscriptions end with SUBSCRIPTION_SCHEMA_RELOAD so clients subscribe again. Resolves to
   * whether the schema changed. SIGHUP does the same for the gateway process.
   */
  reloadSupergraph(): Promise<boolean>;
  close(): Promise<void>;
}

/** Query plans are cached per operation text and name; plans of a typical storefront take well under 1 MiB. */
const QUERY_PLAN_CACHE_MIB = 32;

const HEALTH_CHECK_BODY = JSON.stringify({ query: 'query __ApolloServiceHealthCheck__ { __typename }' });

/**
 * The gateway's error formatting (platform/src/errors.ts). A subgraph out of reach is
 * SERVICE_UNAVAILABLE, its cause (the URL) told outside production only; in production, subgraph
 * errors lose the HTTP response @apollo/gateway attaches, so transport failures never reveal
 * subgraph URLs or bodies. Stack traces are never included (`includeStacktraceInErrorResponses`).
 */
function formatError(config: Config, log: Logger) {
  const production = config.env === 'production';
  return errorFormatter({
    production,
    log,
    unavailableMessage: (formatted) => (production ? 'a service this request needs is briefly unavailable; try again' : formatted.message),
    logMessages: { unavailable: 'a subgraph was out of reach', unexpected: 'unexpected error in a gateway request' },
    internalExtensions: ['response'],
  });
}

/**
 * Verifies the bearer token once at the edge (`edge.viewerOf`: the rate limit saw the same
 * verification); an invalid one fails the whole request with 401.
 */
async function gatewayContext(req: IncomingMessage, edge: Edge): Promise<GatewayContext> {
  return { viewer: await viewerOr401(() => edge.viewerOf(req)), authorization: authorizationOf(req) };
}

/**
 * Starts the gateway over the supergraph at `supergraphPath ?? config.supergraphPath`. Rejects with
 * a {@link SupergraphError} naming the file when it is missing or cannot be loaded as a supergraph.
 */
export async function startGateway(options: StartGatewayOptions = {}): Promise<RunningGateway> {
  const config = options.config ?? loadConfig();
  const log = options.log ?? createLogger('gateway', config.logLevel);
  const production = config.env === 'production';
  // The gateway's own variables (settings.ts), read once before anything starts so that a bad one stops nothing.
  const variables = parseSettings(gatewaySettings, config.vars);
  // Depth, aliases, directives, tokens and cost (platform/src/limits.ts); null with EDGE_LIMITS=off.
  const limits = gatewayLimits(config, variables);
  const trusted = TrustedDocuments.load(variables, production);
  // Outside production, Apollo Sandbox preconfigured for this gateway (sandbox.ts): the page
  // names the port bound at the end, so it asks for it per request. Production signs no token at all.
  const publicUrl = production ? undefined : variables.PUBLIC_GATEWAY_URL;
  let boundPort = 0;
  // The edge's settings (edge.ts).
  const origins = new OriginPolicy({ host: config.host, port: () => boundPort, publicUrl: variables.PUBLIC_GATEWAY_URL, allowed: variables.ALLOWED_ORIGINS });
  const proxies = variables.TRUSTED_PROXIES;
  const rateSettings = edgeLimitsEnabled(config, variables) ? rateLimitSettings(config, variables) : null;
  const sandbox = production
    ? null
    : await createSandbox({
        jwtSecret: config.jwtSecret,
        endpoints: () => sandboxEndpoints({ host: config.host, port: boundPort, publicUrl }),
        buildExplorer: options.buildExplorer,
        log: (level, msg) => log[level](msg),
      });

  const supergraphPath = options.supergraphPath ?? config.supergraphPath;
  const supergraphSdl = await readSupergraph(supergraphPath);

  const overrides: Record<string, readonly string[] | undefined> = Object.fromEntries(
    Object.entries({ ...config.subgraphUrls, ...options.subgraphUrls }).map(([name, urls]) => [name, typeof urls === 'string' ? [urls] : urls]),
  );
  validateOverrides(overrides);
  const ownFetcher = options.fetcher ? null : createKeepAliveFetcher();
  // Keyed by a subgraph's first URL, the one its data source is given.
  const replicaSets = new Map<string, ReplicaSet>();
  const dedupStats = new DedupStats();
  const spreading = spreadingFetcher(options.fetcher ?? ownFetcher!, replicaSets);
  // Shared before a replica is chosen, so identical fetches share whichever replica answers.
  const fetcher: Fetcher = variables.GATEWAY_DEDUP_SUBGRAPH === 'on' ? sharingFetcher(spreading, dedupStats) : spreading;
  const subgraphs: Record<string, string> = {};
  const settings = liveSettingsOf(variables, options.live);
  const metrics = new LiveMetrics();
  const processMetrics = createProcessMetrics({ service: 'gateway', role: 'gateway' });
  metrics.register(processMetrics.registry);
  dedupStats.register(processMetrics.registry);
  const upstream = new UpstreamConnections(log, metrics, settings.upstreamRetryAttempts, gatewayCredentialHeaders(config.subgraphSecret));
  const liveTargets: Record<string, { urls: readonly string[]; dataSource: EntityBatcher }> = {};
  registerEntityBatchMetrics(processMetrics.registry, () => liveTargets);
  const live = new LiveSubscriptions({ log, metrics, upstream, subgraphs: () => liveTargets });
  let updateSupergraph: ((sdl: string) => void) | null = null;
  let currentSdl = supergraphSdl;

  // Query plans run on ours (plan-execution.ts), which shapes results with ours (result-shaping.ts);
  // what still runs on Apollo's (requests that capture usage traces) shapes with ours too.
  installPlanExecution();
  installResultShaping();

  // @apollo/gateway otherwise starts an OpenTelemetry meter provider (cloud resource detectors
  // included) that reports usage to Apollo every hour. Opt in explicitly by setting it to false.
  process.env.APOLLO_TELEMETRY_DISABLED ??= 'true';

  const gateway = new ApolloGateway({
    // A hook rather than the string, so that reloadSupergraph() can hand the gateway a new one.
    supergraphSdl: async ({ update }) => {
      updateSupergraph = update;
      return { supergraphSdl };
    },
    logger: log,
    experimental_approximateQueryPlanStoreMiB: QUERY_PLAN_CACHE_MIB,
    __exposeQueryPlanExperimental: !production,
    buildService({ name, url }) {
      const replicas = overrides[name] ?? (url ? [url] : []);
      if (replicas.length === 0)
        throw new SupergraphError(`Subgraph "${name}" has no routing URL in ${supergraphPath} and no override (${name.toUpperCase()}_URL)`);
      const routed = replicas[0];
      subgraphs[name] = routed;
      replicaSets.set(routed, new ReplicaSet(replicas));
      const dataSource = new SubgraphDataSource({ name, url: routed, fetcher, subgraphSecret: config.subgraphSecret });
      // Subscription events always merge their entity fetches; query plans do when GATEWAY_BATCH_ENTITIES is on.
      const batcher = new EntityBatcher(dataSource);
      liveTargets[name] = { urls: replicas, dataSource: batcher };
      return variables.GATEWAY_BATCH_ENTITIES === 'on' ? batcher : dataSource;
    },
  });
  // Subscriptions are planned on the same supergraph as everything else, reloads included.
  gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => live.updateSchema(coreSupergraphSdl));

  const inputGuard = new InputGuard(inputLimits(config.vars));
  const plugins: ApolloServerPlugin<GatewayContext>[] = [
    // Traces go through OpenTelemetry; Apollo usage reporting would also make every subgraph
    // fetch ask for inline `ftv1` traces, doubling subgraph response work for no local value.
    ApolloServerPluginUsageReportingDisabled(),
    sandbox ? sandbox.plugin : ApolloServerPluginLandingPageDisabled(),
    // NUL bytes, lone surrogates and oversized identifiers: BAD_USER_INPUT before planning.
    inputGuardPlugin(inputGuard),
    // Cost and operationName checked before the gateway plans; limit refusals keep their codes.
    operationLimitsPlugin(limits),
    // A request refused whole because the platform is busy (OVERLOADED) is a 503 with Retry-After.
    overloadedStatusPlugin(),
    graphqlMetricsPlugin(processMetrics),
  ];
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    nodeEnv: config.env,
    logger: log,
    introspection: !production,
    includeStacktraceInErrorResponses: false,
    hideSchemaDetailsFromClientErrors: production,
    formatError: formatError(config, log),
    // The token limit applies while parsing; depth, aliases and directives while validating (once
    // per document: Apollo caches validated documents), both before the gateway plans.
    parseOptions: limits ? { maxTokens: limits.maxTokens } : {},
    validationRules: limits ? limitValidationRules(limits) : [],
    // Apollo's default pretty-prints every response (indent 2): more bytes and CPU for no client.
    stringifyResult: (result) => JSON.stringify(result),
    // Listed documents may be sent by id alone (trusted-documents.ts); no expiry for them.
    persistedQueries: { cache: new PersistedDocumentStore(trusted), ttl: null },
    // main.ts owns the signals: Apollo's own handler would re-raise the signal and skip our exit code.
    stopOnTerminationSignals: false,
    plugins,
  });
  try {
    await apollo.start();
  } catch (error) {
    ownFetcher?.close();
    if (error instanceof SupergraphError) throw error;
    throw new SupergraphError(`The supergraph at ${supergraphPath} could not be loaded: ${(error as Error).message}`, { cause: error });
  }

  const unknown = Object.keys(overrides).filter((name) => overrides[name] !== undefined && !(name in subgraphs));
  if (unknown.length) log.warn({ unknown, subgraphs: Object.keys(subgraphs) }, 'routing URL overrides name subgraphs that the supergraph does not have');

  const readiness: Record<string, () => Promise<void>> = {
    supergraph: async () => {
      if (Object.keys(subgraphs).length === 0) throw new Error('no subgraphs loaded');
    },
  };
  for (const [name, url] of Object.entries(subgraphs)) {
    readiness[name] = async () => {
      const response = await fetcher(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'apollo-require-preflight': 'true', ...gatewayCredentialHeaders(config.subgraphSecret) },
        body: HEALTH_CHECK_BODY,
      });
      const body = await response.text();
      if (!response.ok || !body.includes('"__typename"')) throw new Error(`${url} answered ${response.status}: ${body.slice(0, 200)}`);
    };
  }

  const routes: Record<string, RouteHandler> = { [METRICS_PATH]: metricsRoute(processMetrics.registry) };
  // The same page Apollo serves on GET /graphql with Accept: text/html.
  if (sandbox) routes[SANDBOX_PATH] = sandbox.route;
  // The offline explorer: its page and, below it, its bundle's files.
  if (sandbox) routes[EXPLORER_PATH] = routes[`${EXPLORER_PATH}/*`] = sandbox.explorer.route;
  // Rate limits shared by the replicas through Redis (edge.ts): connected once nothing else can fail.
  const rateLimits = rateSettings ? await EdgeRateLimits.start(config, log, rateSettings) : null;
  const edge = new Edge({ origins, limits: rateLimits, trustedProxies: proxies, jwtSecret: config.acceptedJwtSecrets, log });
  const sharing = variables.GATEWAY_DEDUP_INBOUND === 'on' ? inboundSharing({ stats: dedupStats, maxTokens: limits?.maxTokens }) : undefined;
  const platformHandler = createHttpHandler<GatewayContext>({
    apollo,
    context: (req) => gatewayContext(req, edge),
    readiness,
    readinessTimeoutMs: config.readinessTimeoutMs,
    log,
    routes,
    // Trusted documents first, when enforced: a refused document is neither parsed nor shared.
    // Not enforced, every document may run, and the request path pays nothing for the check.
    execute: trusted.enforced
      ? async (call, execute) => {
          const { method, search, body } = call.request;
          const refusal = await trusted.admit(sentDocument(method, search, body), () => edge.viewerOf(call.req).catch(() => ANONYMOUS));
          if (refusal) return notInListResponse(refusal);
          return sharing ? sharing(call, execute) : execute();
        }
      : sharing,
  });
  // Outside production, /healthz also says which process answers and how much memory it holds
  // (the gateway benchmark reads it); the liveness contract (200, status "ok") is the platform's.
  const handler = edge.http(
    production
      ? platformHandler
      : (req: IncomingMessage, res: ServerResponse) => {
          if (req.url === PATHS.health && (req.method === 'GET' || req.method === 'HEAD')) {
            const usage = process.resourceUsage();
            return sendJson(res, 200, {
              status: 'ok',
              pid: process.pid,
              rssBytes: process.memoryUsage.rss(),
              maxRssBytes: usage.maxRSS * 1024,
              cpuMicros: usage.userCPUTime + usage.systemCPUTime,
            });
          }
          return platformHandler(req, res);
        },
  );

  let http;
  try {
    http = await listen(
      measureHttp(processMetrics, [PATHS.graphql, PATHS.health, PATHS.ready, METRICS_PATH, SANDBOX_PATH, EXPLORER_PATH, '/'], handler),
      config.host,
      options.port ?? config.gatewayPort,
    );
    boundPort = http.port;
  } catch (error) {
    await rateLimits?.close();
    await apollo.stop();
    ownFetcher?.close();
    throw error;
  }
  const liveServer = startLiveServer({
    server: http.server,
    engine: live,
    apollo,
    jwtSecret: config.acceptedJwtSecrets,
    log,
    trusted,
    metrics,
    settings,
    inputGuard,
    limits,
    edge,
  });
  log.info({ url: http.url, subgraphs, supergraph: supergraphPath }, 'gateway ready');

  const reloadSupergraph = async () => {
    const sdl = await readSupergraph(supergraphPath);
    if (sdl === currentSdl) return false;
    currentSdl = sdl;
    updateSupergraph!(sdl);
    log.info({ supergraph: supergraphPath }, 'supergraph reloaded');
    return true;
  };

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Live clients first (they hold sockets open), then in-flight requests, then the gateway.
      await liveServer.close();
      await http.close();
      await rateLimits?.close();
      await apollo.stop();
      await upstream.close();
      ownFetcher?.close();
    })());
  // The endpoint as the pages name it (the public URL behind a proxy); the pages sit beside it.
  const pageEndpoint = sandbox ? sandboxEndpoints({ host: config.host, port: http.port, publicUrl }).endpoint : null;
  return {
    url: http.url,
    sandboxUrl: pageEndpoint ? new URL('.', pageEndpoint).href : null,
    explorerUrl: pageEndpoint ? new URL(`.${EXPLORER_PATH}`, pageEndpoint).href : null,
    port: http.port,
    subgraphs: { ...subgraphs },
    metrics: () => metrics.snapshot(),
    dedup: () => structuredClone(dedupStats.counts),
    entityBatches: () => Object.fromEntries(Object.entries(liveTargets).map(([name, { dataSource }]) => [name, { ...dataSource.stats }])),
    reloadSupergraph,
    close,
    [Symbol.asyncDispose]: close,
  };
}
