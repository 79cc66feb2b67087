import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { ApolloServer, type BaseContext } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { parse, type GraphQLSchema } from 'graphql';
import type { EntitySchema } from '@mikro-orm/core';
import { type Config, type ServiceName, REPO_ROOT, loadConfig, runsWorkers, servesApi } from './config.ts';
import { type SettingsSchema, parseSettings } from './settings.ts';
import { type Database, type EntityManager, type NamedMigration, openDatabase } from './database.ts';
import { type KafkaClient, type TopicSpec, createKafka } from './kafka.ts';
import { logKafkaRetry } from './kafka-log.ts';
import { type Redis, createRedis } from './redis.ts';
import { type Logger, createLogger } from './logger.ts';
import { type Viewer, viewerFromAuthorization } from './auth.ts';
import { errorFormatter } from './errors.ts';
import { PATHS, authorizationOf, createHttpHandler, listen, viewerOr401, type RunningHttpServer } from './http.ts';
import { METRICS_PATH, type ProcessMetrics, type Registry, createProcessMetrics, graphqlMetricsPlugin, measureHttp, metricsRoute } from './metrics.ts';
import { registerMessagingMetrics } from './messaging-metrics.ts';
import { type EventSchemaRegistry, defaultEventSchemaRegistry } from './event-schemas.ts';
import { dlqTopic, eventsTopic } from './events.ts';
import { type OutboxProjector, OutboxRelay, outboxMigrations } from './outbox.ts';
import { type ConsumerSpec, type RunningConsumer, startConsumer } from './inbox.ts';
import { retryPolicy, runPolicy } from './resilience.ts';
import { type RunningRetention, startRetention } from './retention.ts';
import { LiveFeed } from './live.ts';
import { shutdownTracing } from './tracing.ts';
import { serveSubscriptions } from './ws.ts';
import { InputGuard, inputGuardPlugin, inputLimits } from './input.ts';
import { limitValidationRules, operationLimitsPlugin, subgraphLimits } from './limits.ts';

/** What every resolver of every service receives. */
export interface RequestContext extends BaseContext {
  readonly viewer: Viewer;
  /** A fresh EntityManager for this request only. */
  readonly em: EntityManager;
  readonly log: Logger;
}

/** The shared connections of a running service, and its settings. */
export interface ServiceRuntime<TSettings = unknown> {
  readonly name: ServiceName;
  readonly config: Config;
  /**
   * The service's own settings: its module's {@link ServiceModule.settings}, parsed once at start-up
   * from the configuration's environment (`{}` for a module without any).
   */
  readonly settings: TSettings;
  readonly log: Logger;
  readonly db: Database;
  readonly redis: Redis;
  readonly kafka: KafkaClient;
  /** The event contracts (`schema/events/`), for producing and consuming. */
  readonly events: EventSchemaRegistry;
  /**
   * The process's one Redis subscriber connection for live subscriptions (opened on first use),
   * shared by every subscription resolver; see platform/src/live.ts.
   */
  readonly live: LiveFeed;
}

/**
 * A service is its domain only: entities, migrations, resolvers and, optionally, how it extends the
 * request context and what it runs beside the HTTP server. Everything else is the platform's.
 */
export interface ServiceModule<TContext extends RequestContext = RequestContext, TSettings = unknown> {
  readonly name: ServiceName;
  readonly entities: readonly EntitySchema<any, any>[];
  readonly migrations: readonly NamedMigration[];
  /**
   * The service's own environment variables (`ORDER_*`): one zod object keyed by variable name, its
   * fields made with the builders of platform/src/settings.ts. The platform parses it once at
   * start-up, before connecting anything, and stops the service with a ConfigError naming every
   * variable at fault; every hook below gets the result as `runtime.settings`. The README's
   * configuration tables are generated from it (`npm run docs:config`).
   */
  readonly settings?: SettingsSchema<TSettings>;
  /**
   * The services whose subgraphs it calls directly (platform/src/peer.ts): the cart calls the order
   * and inventory services. Whoever starts a stack starts these first and hands over their URLs
   * (`<SERVICE>_URL`).
   */
  readonly peers?: readonly ServiceName[];
  /** Extra topics to create at start-up (its events topic and those it consumes are created anyway). */
  readonly topics?: readonly TopicSpec[];
  /**
   * The service writes events through its transactional outbox: the outbox and inbox tables are
   * added to its migrations, `<name>.events.v1` is created, and a relay publishes beside the HTTP server.
   */
  readonly publishesEvents?: boolean;
  /**
   * Feeds Redis (live figures, cache invalidations) from the outbox rows the relay has done: its
   * published events and its live changes (`enqueueLive`). Runs in the active relay (ADR 0016).
   */
  project?(runtime: ServiceRuntime<TSettings>): OutboxProjector;
  /** The event consumers it runs (each with its inbox and DLQ), in processes whose role runs workers. */
  consumers?(runtime: ServiceRuntime<TSettings>): readonly ConsumerSpec[];
  /** Other work beside the consumers (a deadline sweeper), in processes whose role runs workers; disposed first at shutdown. */
  background?(runtime: ServiceRuntime<TSettings>): AsyncDisposable | Promise<AsyncDisposable>;
  /** Work the API needs beside it (order's admission probe), in processes whose role serves the API; disposed before the API's sockets close. */
  besideApi?(runtime: ServiceRuntime<TSettings>): AsyncDisposable;
  resolvers(runtime: ServiceRuntime<TSettings>): GraphQLResolverMap<TContext>;
  /** Adds per-request state (DataLoaders, ...) to the base context. */
  context?(runtime: ServiceRuntime<TSettings>, base: RequestContext): TContext;
  /**
   * Registers the service's own metrics (orders by status, the breaker's state, cache hits) in the
   * process's registry, in every process; `runtime.config.serviceRole` says which work this one does.
   */
  metrics?(runtime: ServiceRuntime<TSettings>, registry: Registry): void;
}

/** How to start a service; everything defaults to the environment's configuration. */
export interface StartOptions {
  readonly config?: Config;
  /** Overrides the configured port; 0 picks a free one (tests). */
  readonly port?: number;
  /** Count SQL statements (tests assert batching with `runtime.db.queryCount`). */
  readonly countQueries?: boolean;
  /** Replaces the service's logger (tests capture what it logs); default: standard output at `config.logLevel`. */
  readonly log?: Logger;
  /** Apply pending migrations before serving (default true). */
  readonly migrate?: boolean;
  /** Run the outbox relay, consumers and background work (default true; scripts turn them off). */
  readonly messaging?: boolean;
  /** Replaces the event contracts (tests). */
  readonly events?: EventSchemaRegistry;
  /** Timing of the graphql-ws endpoint (tests shorten them); defaults in platform/src/ws.ts. */
  readonly subscriptions?: {
    readonly keepAliveMs?: number;
    readonly connectionInitWaitTimeoutMs?: number;
  };
}

/** A started service; dispose it to shut it down gracefully. */
export interface RunningService<TSettings = unknown> extends AsyncDisposable {
  readonly runtime: ServiceRuntime<TSettings>;
  readonly url: string;
  /** The graphql-ws endpoint: the same port and path as {@link RunningService.url}, over `ws:`. */
  readonly wsUrl: string;
  readonly port: number;
  /** The outbox relay, when the service publishes events and its role runs workers. */
  readonly relay: OutboxRelay | null;
  /** Its running event consumers, with their metrics. */
  readonly consumers: readonly RunningConsumer[];
  /** The process's Prometheus registry, served at `/metrics`. */
  readonly metrics: ProcessMetrics;
  close(): Promise<void>;
}

/** The path of a subgraph's SDL, `schema/<name>.graphql`. */
export function schemaPath(name: ServiceName): string {
  return path.join(REPO_ROOT, 'schema', `${name}.graphql`);
}

/** A subgraph's error formatting (platform/src/errors.ts): out of reach, it names the service. */
function formatError(config: Config, log: Logger, service: ServiceName) {
  return errorFormatter({
    production: config.env === 'production',
    log,
    unavailableMessage: () => `the ${service} service is briefly unavailable; try again`,
    logMessages: { unavailable: 'a request failed: something it needed was out of reach', unexpected: 'unexpected resolver error' },
  });
}

/** A service runtime without its HTTP server, for start-up, scripts (migrate, seed) and tests. */
export interface OpenRuntime<TSettings = unknown> extends AsyncDisposable {
  readonly runtime: ServiceRuntime<TSettings>;
  close(): Promise<void>;
}

/**
 * Connects one service to its database (migrating it unless told not to), Redis and Kafka, and
 * creates the topics it owns. The same connections serve the HTTP server and the scripts.
 */
export async function openRuntime<TSettings = unknown>(
  module: Pick<ServiceModule<any, TSettings>, 'name' | 'entities' | 'migrations' | 'topics' | 'publishesEvents' | 'consumers' | 'settings'>,
  options: StartOptions = {},
): Promise<OpenRuntime<TSettings>> {
  const config = options.config ?? loadConfig();
  // Before anything is opened, so a bad setting stops the service with nothing to undo. From the
  // configuration's environment rather than process.env: a test stack's reaches the service too.
  const settings = module.settings ? parseSettings(module.settings, config.vars) : ({} as TSettings);
  const log = options.log ?? createLogger(module.name, config.logLevel);
  const cleanups: (() => Promise<unknown>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => log.warn({ err: error }, 'shutdown step failed'));
    })());
  try {
    const messaging = Boolean(module.publishesEvents || module.consumers);
    const migrations = messaging ? [...module.migrations, ...outboxMigrations] : module.migrations;
    const db = await openDatabase({ config, service: module.name, entities: module.entities, migrations, log, countQueries: options.countQueries });
    cleanups.push(() => db.close());
    if (options.migrate !== false) {
      const applied = await db.migrate();
      if (applied.length) log.info({ migrations: applied }, 'migrations applied');
    }
    const redis = createRedis(config, log, module.name);
    cleanups.push(() => redis.quit());
    const live = new LiveFeed({ redisUrl: config.redisUrl, log, name: module.name });
    cleanups.push(() => live.close());
    const kafka = createKafka(config, log, `swiftcart-${module.name}`);
    cleanups.push(() => kafka.close());
    const runtime: ServiceRuntime<TSettings> = {
      name: module.name,
      config,
      settings,
      log,
      db,
      redis,
      kafka,
      live,
      events: options.events ?? defaultEventSchemaRegistry(),
    };
    return { runtime, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The GraphQL side of a service process: its schema, Apollo server and request contexts. */
interface ServiceApi<TContext extends RequestContext> {
  readonly schema: GraphQLSchema;
  readonly apollo: ApolloServer<TContext>;
  readonly inputGuard: InputGuard;
  readonly limits: ReturnType<typeof subgraphLimits>;
  /** One context shape for HTTP requests and WebSocket subscriptions, so resolvers are shared. */
  contextFor(viewer: Viewer): TContext;
  context(req: IncomingMessage): Promise<TContext>;
}

async function startApi<TContext extends RequestContext, TSettings>(
  module: ServiceModule<TContext, TSettings>,
  runtime: ServiceRuntime<TSettings>,
  config: Config,
  log: Logger,
  metrics: ProcessMetrics,
): Promise<ServiceApi<TContext>> {
  const schema = buildSubgraphSchema([
    {
      typeDefs: parse(readFileSync(schemaPath(module.name), 'utf8')),
      resolvers: module.resolvers(runtime) as GraphQLResolverMap<unknown>,
    },
  ]);
  // NUL bytes, lone surrogates and oversized identifiers are refused before any resolver runs.
  const inputGuard = new InputGuard(inputLimits(config.vars));
  // Depth and tokens limited here too: a caller that reaches the subgraph directly skips the gateway's limits.
  const limits = subgraphLimits(config);
  const apollo = new ApolloServer<TContext>({
    schema,
    introspection: config.env !== 'production',
    // Stack traces go to the log, not to clients: error codes and messages are the contract.
    includeStacktraceInErrorResponses: false,
    plugins: [ApolloServerPluginInlineTraceDisabled(), inputGuardPlugin(inputGuard), operationLimitsPlugin(null), graphqlMetricsPlugin(metrics)],
    parseOptions: { maxTokens: limits.maxTokens },
    validationRules: limitValidationRules({ maxDepth: limits.maxDepth }),
    // runService owns SIGTERM/SIGINT: Apollo's own handlers would race it and hang the exit.
    stopOnTerminationSignals: false,
    formatError: formatError(config, log, module.name),
  });
  await apollo.start();
  const contextFor = (viewer: Viewer): TContext => {
    const base: RequestContext = { viewer, em: runtime.db.fork(), log };
    return module.context ? module.context(runtime, base) : (base as TContext);
  };
  const context = async (req: IncomingMessage): Promise<TContext> =>
    contextFor(await viewerOr401(() => viewerFromAuthorization(authorizationOf(req), config.acceptedJwtSecrets)));
  return { schema, apollo, inputGuard, limits, contextFor, context };
}

/** Connects a service to Postgres, Redis and Kafka, migrates, and serves its subgraph over HTTP. */
export async function startService<TContext extends RequestContext, TSettings>(
  module: ServiceModule<TContext, TSettings>,
  options: StartOptions = {},
): Promise<RunningService<TSettings>> {
  const opened = await openRuntime(module, options);
  const { runtime } = opened;
  const { config, log, db, redis, kafka } = runtime;
  const cleanups: (() => Promise<unknown>)[] = [() => opened.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => log.warn({ err: error }, 'shutdown step failed'));
    cleanups.length = 0;
  };
  const role = config.serviceRole;
  const metrics = createProcessMetrics({ service: module.name, role });
  try {
    const api = servesApi(role) ? await startApi(module, runtime, config, log, metrics) : null;
    if (api) cleanups.push(() => api.apollo.stop());
    const http: RunningHttpServer = await listen(
      measureHttp(
        metrics,
        [PATHS.graphql, PATHS.health, PATHS.ready, METRICS_PATH],
        createHttpHandler({
          metrics: metricsRoute(metrics.registry),
          apollo: api?.apollo ?? null,
          context: async (req) => api!.context(req),
          log,
          gatewaySecret: config.acceptedSubgraphSecrets,
          readinessTimeoutMs: config.readinessTimeoutMs,
          readiness: {
            postgres: () => db.ping(),
            redis: async () => {
              await redis.ping();
            },
            // An api process never talks to Kafka: the relay of a worker publishes what it writes.
            ...(runsWorkers(role) ? { kafka: () => kafka.ping(config.readinessTimeoutMs) } : {}),
          },
        }),
      ),
      config.host,
      options.port ?? config.servicePorts[module.name],
    );
    // HTTP closes first so no request starts after its connections are gone.
    cleanups.push(() => http.close());
    if (api) {
      const subscriptions = serveSubscriptions({
        server: http.server,
        schema: api.schema,
        context: api.contextFor,
        jwtSecret: config.acceptedJwtSecrets,
        log,
        formatError: formatError(config, log, module.name),
        production: config.env === 'production',
        inputGuard: api.inputGuard,
        limits: api.limits,
        gatewaySecret: config.acceptedSubgraphSecrets,
        keepAliveMs: options.subscriptions?.keepAliveMs,
        connectionInitWaitTimeoutMs: options.subscriptions?.connectionInitWaitTimeoutMs,
      });
      // Before HTTP: open sockets would otherwise hold the HTTP server's close for its grace period,
      // and their subscriptions end (letting their Redis channels go) while Redis is still there.
      cleanups.push(() => subscriptions.close());
      if (module.besideApi) {
        const work = module.besideApi(runtime);
        cleanups.push(async () => {
          await work[Symbol.asyncDispose]();
        });
      }
    }
    const relays: OutboxRelay[] = [];
    const consumers: RunningConsumer[] = [];
    let backgroundStarted = false;
    let retention: RunningRetention | null = null;
    // Topics are created here, never by the broker: this service's own, and those it consumes
    // with their dead-letter topics (one partition, so an offset names a dead letter), so
    // start-up order between services does not matter.
    const consumerSpecs = runsWorkers(role) ? (module.consumers?.(runtime) ?? []) : [];
    const messaging = options.messaging !== false && runsWorkers(role) && Boolean(module.publishesEvents || module.consumers || module.background);
    const onPublished = messaging
      ? registerMessagingMetrics({
          registry: metrics.registry,
          db,
          kafka,
          publishes: Boolean(module.publishesEvents),
          consumers: () => consumerSpecs.map((spec) => ({ spec, running: consumers.find((c) => c.consumer === spec.consumer) })),
        })
      : undefined;
    module.metrics?.(runtime, metrics.registry);
    const startMessaging = async () => {
      const topics = new Map((module.topics ?? []).map((t) => [t.name, t]));
      if (module.publishesEvents) topics.set(eventsTopic(module.name), { name: eventsTopic(module.name) });
      for (const consumer of consumerSpecs) {
        for (const topic of consumer.topics) {
          if (!topics.has(topic)) topics.set(topic, { name: topic });
          topics.set(dlqTopic(topic), { name: dlqTopic(topic), partitions: 1 });
        }
      }
      if (topics.size) await kafka.ensureTopics([...topics.values()]);
      if (module.publishesEvents && relays.length === 0) {
        const relay = new OutboxRelay({ config, service: module.name, db, kafka, log, project: module.project?.(runtime), onPublished });
        await relay.start();
        relays.push(relay);
        cleanups.push(() => relay.stop());
      }
      for (const spec of consumerSpecs) {
        if (consumers.some((c) => c.consumer === spec.consumer)) continue;
        const consumer: RunningConsumer = await startConsumer({ ...spec, runtime, registry: runtime.events });
        consumers.push(consumer);
        cleanups.push(() => consumer.stop());
      }
      if (!retention) {
        const started = startRetention({ config, db, log, outbox: Boolean(module.publishesEvents), inbox: consumerSpecs.length > 0 });
        retention = started;
        cleanups.push(() => started.stop());
      }
      if (module.background && !backgroundStarted) {
        backgroundStarted = true;
        const work = await module.background(runtime);
        cleanups.push(async () => {
          await work[Symbol.asyncDispose]();
        });
      }
    };
    if (messaging) {
      try {
        await startMessaging();
      } catch (error) {
        // Kafka is down, or still starting: serve anyway (readiness says why) and keep trying in the
        // background. A broker's normal start-up states (a new topic without a leader yet) need no
        // one, unless they last (kafka-log.ts).
        logKafkaRetry(log, error, 0, 'messaging did not start; retrying in the background');
        const stop = new AbortController();
        cleanups.push(async () => stop.abort());
        const untilStarted = retryPolicy({
          attempts: Number.MAX_SAFE_INTEGER,
          baseMs: 1_000,
          maxMs: 10_000,
          onRetry: (e, attempt) => logKafkaRetry(log, e, attempt, 'messaging still not started'),
        });
        void runPolicy(untilStarted, startMessaging, stop.signal).catch(() => undefined);
      }
    }
    // loadConfig refuses production without it; elsewhere a developer may run without, knowingly.
    if (!config.subgraphSecret) log.warn('SUBGRAPH_SECRET is unset: this subgraph accepts requests that did not come through the gateway (development only)');
    log.info({ url: http.url, role }, role === 'worker' ? `${module.name} worker ready` : `${module.name} subgraph ready`);
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= closeAll());
    return {
      runtime,
      url: http.url,
      wsUrl: http.url.replace(/^http/, 'ws'),
      port: http.port,
      relay: relays[0] ?? null,
      consumers,
      metrics,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * The `main` of a service process: starts it and shuts it down gracefully on SIGTERM or SIGINT,
 * exiting non-zero if start-up fails.
 */
export async function runService<TContext extends RequestContext, TSettings>(module: ServiceModule<TContext, TSettings>): Promise<void> {
  let service: RunningService<TSettings>;
  try {
    service = await startService(module);
  } catch (error) {
    createLogger(module.name, 'error').fatal({ err: error }, `${module.name} failed to start`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    service.runtime.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    await service.close();
    await shutdownTracing();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
