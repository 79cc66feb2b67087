import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { IncomingMessage } from 'node:http';
import { ApolloServer, type BaseContext } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { parse, type GraphQLFormattedError } from 'graphql';
import type { EntitySchema } from '@mikro-orm/core';
import { type Config, type ServiceName, REPO_ROOT, loadConfig } from './config.ts';
import { type Database, type EntityManager, type NamedMigration, openDatabase } from './database.ts';
import { type KafkaClient, type TopicSpec, createKafka } from './kafka.ts';
import { type Redis, createRedis } from './redis.ts';
import { type Logger, createLogger } from './logger.ts';
import { type Viewer, AUTHORIZATION_HEADER, viewerFromAuthorization } from './auth.ts';
import { ErrorCode } from './errors.ts';
import { createHttpHandler, listen, type RunningHttpServer } from './http.ts';

/** What every resolver of every service receives. */
export interface RequestContext extends BaseContext {
  readonly viewer: Viewer;
  /** A fresh EntityManager for this request only. */
  readonly em: EntityManager;
  readonly log: Logger;
}

/** The shared connections of a running service. */
export interface ServiceRuntime {
  readonly name: ServiceName;
  readonly config: Config;
  readonly log: Logger;
  readonly db: Database;
  readonly redis: Redis;
  readonly kafka: KafkaClient;
}

/**
 * A service is its domain only: entities, migrations, resolvers and, optionally, how it extends the
 * request context and what it runs beside the HTTP server. Everything else is the platform's.
 */
export interface ServiceModule<TContext extends RequestContext = RequestContext> {
  readonly name: ServiceName;
  readonly entities: readonly EntitySchema<any, any>[];
  readonly migrations: readonly NamedMigration[];
  /** Topics this service owns; created at start-up. */
  readonly topics?: readonly TopicSpec[];
  resolvers(runtime: ServiceRuntime): GraphQLResolverMap<TContext>;
  /** Adds per-request state (DataLoaders, ...) to the base context. */
  context?(runtime: ServiceRuntime, base: RequestContext): TContext;
}

/** How to start a service; everything defaults to the environment's configuration. */
export interface StartOptions {
  readonly config?: Config;
  /** Overrides the configured port; 0 picks a free one (tests). */
  readonly port?: number;
  /** Count SQL statements (tests assert batching with `runtime.db.queryCount`). */
  readonly countQueries?: boolean;
  /** Apply pending migrations before serving (default true). */
  readonly migrate?: boolean;
}

/** A started service; dispose it to shut it down gracefully. */
export interface RunningService extends AsyncDisposable {
  readonly runtime: ServiceRuntime;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The path of a subgraph's SDL, `schema/<name>.graphql`. */
export function schemaPath(name: ServiceName): string {
  return path.join(REPO_ROOT, 'schema', `${name}.graphql`);
}

/** Errors with a documented code pass through; anything else is logged and, in production, masked. */
function formatError(config: Config, log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    if (code && code !== ErrorCode.InternalServerError) return formatted;
    log.error({ err: error }, 'unexpected resolver error');
    if (config.env !== 'production') return formatted;
    return { message: 'Internal server error', path: formatted.path, locations: formatted.locations, extensions: { code: ErrorCode.InternalServerError } };
  };
}

/** A service runtime without its HTTP server, for start-up, scripts (migrate, seed) and tests. */
export interface OpenRuntime extends AsyncDisposable {
  readonly runtime: ServiceRuntime;
  close(): Promise<void>;
}

/**
 * Connects one service to its database (migrating it unless told not to), Redis and Kafka, and
 * creates the topics it owns. The same connections serve the HTTP server and the scripts.
 */
export async function openRuntime(module: Pick<ServiceModule<any>, 'name' | 'entities' | 'migrations' | 'topics'>, options: StartOptions = {}): Promise<OpenRuntime> {
  const config = options.config ?? loadConfig();
  const log = createLogger(module.name, config.logLevel);
  const cleanups: (() => Promise<unknown>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= (async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => log.warn({ err: error }, 'shutdown step failed'));
  })());
  try {
    const db = await openDatabase({ config, service: module.name, entities: module.entities, migrations: module.migrations, log, countQueries: options.countQueries });
    cleanups.push(() => db.close());
    if (options.migrate !== false) {
      const applied = await db.migrate();
      if (applied.length) log.info({ migrations: applied }, 'migrations applied');
    }
    const redis = createRedis(config, log, module.name);
    cleanups.push(() => redis.quit());
    const kafka = createKafka(config, log, `swiftcart-${module.name}`);
    cleanups.push(() => kafka.close());
    if (module.topics?.length) await kafka.ensureTopics(module.topics);
    return { runtime: { name: module.name, config, log, db, redis, kafka }, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Connects a service to Postgres, Redis and Kafka, migrates, and serves its subgraph over HTTP. */
export async function startService<TContext extends RequestContext>(module: ServiceModule<TContext>, options: StartOptions = {}): Promise<RunningService> {
  const opened = await openRuntime(module, options);
  const { runtime } = opened;
  const { config, log, db, redis, kafka } = runtime;
  const cleanups: (() => Promise<unknown>)[] = [() => opened.close()];
  const closeAll = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error) => log.warn({ err: error }, 'shutdown step failed'));
    cleanups.length = 0;
  };
  try {
    const schema = buildSubgraphSchema([{
      typeDefs: parse(readFileSync(schemaPath(module.name), 'utf8')),
      resolvers: module.resolvers(runtime) as GraphQLResolverMap<unknown>,
    }]);
    const apollo = new ApolloServer<TContext>({
      schema,
      introspection: config.env !== 'production',
      // Stack traces go to the log, not to clients: error codes and messages are the contract.
      includeStacktraceInErrorResponses: false,
      plugins: [ApolloServerPluginInlineTraceDisabled()],
      // runService owns SIGTERM/SIGINT: Apollo's own handlers would race it and hang the exit.
      stopOnTerminationSignals: false,
      formatError: formatError(config, log),
    });
    await apollo.start();
    cleanups.push(() => apollo.stop());

    const context = async (req: IncomingMessage): Promise<TContext> => {
      const header = req.headers[AUTHORIZATION_HEADER];
      let viewer: Viewer;
      try {
        viewer = await viewerFromAuthorization(Array.isArray(header) ? header[0] : header, config.jwtSecret);
      } catch (error) {
        (error as { extensions: Record<string, unknown> }).extensions.http = { status: 401 };
        throw error;
      }
      const base: RequestContext = { viewer, em: db.fork(), log };
      return module.context ? module.context(runtime, base) : (base as TContext);
    };
    const http: RunningHttpServer = await listen(
      createHttpHandler({
        apollo,
        context,
        log,
        readinessTimeoutMs: config.readinessTimeoutMs,
        readiness: {
          postgres: () => db.ping(),
          redis: async () => { await redis.ping(); },
          kafka: () => kafka.ping(config.readinessTimeoutMs),
        },
      }),
      config.host,
      options.port ?? config.servicePorts[module.name],
    );
    // HTTP closes first so no request starts after its connections are gone.
    cleanups.push(() => http.close());
    log.info({ url: http.url }, `${module.name} subgraph ready`);
    let closing: Promise<void> | undefined;
    const close = () => (closing ??= closeAll());
    return { runtime, url: http.url, port: http.port, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * The `main` of a service process: starts it and shuts it down gracefully on SIGTERM or SIGINT,
 * exiting non-zero if start-up fails.
 */
export async function runService<TContext extends RequestContext>(module: ServiceModule<TContext>): Promise<void> {
  let service: RunningService;
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
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
