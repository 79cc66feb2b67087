import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The five services behind the gateway, in the order they are started. */
export const SERVICE_NAMES = ['product', 'inventory', 'order', 'payment', 'shipment'] as const;

/** One of the five SwiftCart services. */
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Replica k (from 0) of a service listens on its port + REPLICA_PORT_STEP·k (`npm start -- --replicas N`). */
export const REPLICA_PORT_STEP = 10;

/** The port of replica `k` (from 0) of a service whose first replica listens on `basePort`. */
export function replicaPort(basePort: number, k: number): number {
  return basePort + REPLICA_PORT_STEP * k;
}

/**
 * What one service process runs (`SERVICE_ROLE`): `all` (the default) serves the API and runs the
 * outbox relay, the event consumers and background work; `api` only serves the API (GraphQL over
 * HTTP and WebSocket); `worker` only runs the relay, consumers and background work, with its own
 * database pool, and answers nothing but the health probes.
 */
export const SERVICE_ROLES = ['all', 'api', 'worker'] as const;

/** One of {@link SERVICE_ROLES}. */
export type ServiceRole = (typeof SERVICE_ROLES)[number];

/** Whether a process of this role serves the GraphQL API. */
export function servesApi(role: ServiceRole): boolean {
  return role !== 'worker';
}

/** Whether a process of this role runs the relay, the consumers and background work. */
export function runsWorkers(role: ServiceRole): boolean {
  return role !== 'api';
}

/**
 * The worker process of replica k listens (for its health probes) on the replica's port + this
 * (`npm start -- --workers`): ports 4006–4010 for the first replicas, free of the 4001–4005 block.
 */
export const WORKER_PORT_OFFSET = 5;

/**
 * Partitions of a topic the platform creates when `KAFKA_PARTITIONS` is unset: one per core, at
 * least 3. A partition is the unit of parallelism of a consumer group, so this is how many
 * consumers of one group (replicas, or concurrent partitions in one process) can work at once.
 */
export const DEFAULT_KAFKA_PARTITIONS = Math.max(3, availableParallelism());

/** Default HTTP port of each service; the gateway takes 4000. */
export const DEFAULT_SERVICE_PORTS: Readonly<Record<ServiceName, number>> = {
  product: 4001,
  inventory: 4002,
  order: 4003,
  payment: 4004,
  shipment: 4005,
};

/**
 * Development signing secret for HS256 tokens. It is public on purpose: anything that is not a
 * developer's machine must set `JWT_SECRET`, and every process refuses to start in production without it.
 */
export const DEVELOPMENT_JWT_SECRET = 'swiftcart-development-secret-do-not-use-in-production';

/** Absolute path of the repository root, so scripts behave the same from any working directory. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Everything a SwiftCart process reads from its environment, typed and defaulted. */
export interface Config {
  readonly env: 'development' | 'test' | 'production';
  readonly logLevel: string;
  readonly host: string;
  /** Server URL without a database name; each service appends its own database. */
  readonly databaseUrl: string;
  /** Service databases are named `<prefix>_<service>`. */
  readonly databasePrefix: string;
  readonly redisUrl: string;
  /** Prepended to every Redis key and channel, so test runs never see each other's data. */
  readonly redisPrefix: string;
  readonly kafkaBrokers: readonly string[];
  /** Prepended to every topic name, so test runs never see each other's messages. */
  readonly kafkaTopicPrefix: string;
  /**
   * How long the group coordinator waits for a consumer's heartbeat before it gives the consumer's
   * partitions to the others (KAFKA_SESSION_TIMEOUT_MS): how soon a replica that died is replaced.
   */
  readonly kafkaSessionTimeoutMs: number;
  /** Partitions of each event topic the platform creates (`KAFKA_PARTITIONS`); existing topics keep theirs. */
  readonly kafkaPartitions: number;
  /**
   * Copies of each topic the platform creates (`KAFKA_REPLICATION_FACTOR`, default 1: the local
   * single broker; 3 in production) and how many of them must have a write before it counts
   * (`KAFKA_MIN_INSYNC_REPLICAS`, default 1; 2 with 3 copies), with the producers' acks=all.
   */
  readonly kafkaReplicationFactor: number;
  readonly kafkaMinInsyncReplicas: number;
  /** How long Kafka keeps the events of the topics the platform creates (`KAFKA_RETENTION_MS`, default 7 days). */
  readonly kafkaRetentionMs: number;
  /** Published outbox rows are deleted this long after publication (`OUTBOX_RETENTION_MS`, default 1 hour). */
  readonly outboxRetentionMs: number;
  /**
   * Inbox rows are deleted this long after processing (`INBOX_RETENTION_MS`, default 8 days). Must be
   * longer than `kafkaRetentionMs`: a redelivery older than the inbox's memory would apply twice.
   */
  readonly inboxRetentionMs: number;
  /** How often both are pruned (`RETENTION_INTERVAL_MS`, default 1 minute). */
  readonly retentionIntervalMs: number;
  /**
   * How many times a message may be handed to a consumer that then died before finishing it
   * (`CONSUMER_MAX_DELIVERIES`, default 3): the next delivery dead-letters it unapplied.
   */
  readonly consumerMaxDeliveries: number;
  /** What this process runs (`SERVICE_ROLE`): see {@link SERVICE_ROLES}. */
  readonly serviceRole: ServiceRole;
  readonly jwtSecret: string;
  /**
   * The gateway's credential towards the subgraphs (`SUBGRAPH_SECRET`, platform/src/gateway-credential.ts):
   * the gateway sends it, subgraphs require it. Null only outside production, when it is unset:
   * subgraphs then accept requests without it (and warn at start-up).
   */
  readonly subgraphSecret: string | null;
  readonly gatewayPort: number;
  readonly servicePorts: Readonly<Record<ServiceName, number>>;
  /**
   * Per-service routing URL overrides for the gateway (`PRODUCT_URL`, ...): one URL per replica of
   * the service (comma-separated in the variable); the gateway spreads its calls over them.
   */
  readonly subgraphUrls: Readonly<Partial<Record<ServiceName, readonly string[]>>>;
  readonly supergraphPath: string;
  readonly productCacheTtlSeconds: number;
  /** How long a health probe may take before it counts as down. */
  readonly readinessTimeoutMs: number;
  /** Connections per service database pool (`DB_POOL_SIZE`). */
  readonly databasePoolSize: number;
  /**
   * How long a statement may wait for a pooled connection, or for a new one to open, before it fails
   * as unavailable (`DB_CONNECT_TIMEOUT_MS`): a request then gets SERVICE_UNAVAILABLE instead of
   * hanging on a pool that has nothing to give.
   */
  readonly databaseConnectTimeoutMs: number;
  /**
   * The environment this configuration was read from. Services read their own settings
   * (`ORDER_*`, `PAYMENT_*`) from here rather than from `process.env`, so a test stack's
   * environment reaches them too.
   */
  readonly vars: Readonly<Record<string, string | undefined>>;
}

/** Thrown when an environment variable holds something that cannot be used. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** One service process of a replicated stack (`npm start -- --replicas N --workers`). */
export interface ServiceInstance {
  readonly service: ServiceName;
  /** `order`, `order-2`, `order-worker`, `order-worker-2`: its log file is `<name>.log`. */
  readonly name: string;
  readonly role: ServiceRole;
  readonly port: number;
}

/**
 * The service processes of `replicas` replicas, each one process or, with `workers`, an api
 * process and a worker: replica k (from 0) on the service's port + 10·k, its worker on that port +
 * {@link WORKER_PORT_OFFSET}. Throws a {@link ConfigError} naming both when two would share a port
 * (a service port moved onto another's replica or worker).
 */
export function serviceInstances(options: { readonly replicas: number; readonly workers: boolean }, ports: Readonly<Record<ServiceName, number>>): ServiceInstance[] {
  const instances = SERVICE_NAMES.flatMap((service) => Array.from({ length: options.replicas }, (_, k): ServiceInstance[] => {
    const suffix = k === 0 ? '' : `-${k + 1}`;
    const port = replicaPort(ports[service], k);
    if (!options.workers) return [{ service, name: `${service}${suffix}`, role: 'all', port }];
    return [
      { service, name: `${service}${suffix}`, role: 'api', port },
      { service, name: `${service}-worker${suffix}`, role: 'worker', port: port + WORKER_PORT_OFFSET },
    ];
  }).flat());
  const byPort = new Map<number, string>();
  for (const { name, port } of instances) {
    const taken = byPort.get(port);
    if (taken) throw new ConfigError(`${taken} and ${name} would both listen on port ${port}: move one with <SERVICE>_PORT`);
    byPort.set(port, name);
  }
  return instances;
}


/**
 * Reads the integer environment variable `key` (`fallback` when unset or empty); throws a
 * {@link ConfigError} naming the variable and its bounds for anything else.
 */
export function integerVar(env: NodeJS.ProcessEnv, key: string, fallback: number, min = 0, max = 65_535): number {
  const raw = env[key]?.trim();
  if (raw === undefined || raw === '') return fallback;
  // Digits only: Number() would also take "0x10", "1e3" or "1.0".
  const value = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got "${env[key]}"`);
  }
  return value;
}

function url(env: NodeJS.ProcessEnv, key: string, fallback: string, protocols: readonly string[]): string {
  const raw = env[key] || fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${key} must be a URL, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${key} must use ${protocols.join(' or ')}, got "${raw}"`);
  }
  return raw;
}

/** Where spans go: a Zipkin server, an OTLP/HTTP endpoint (a collector), or nowhere. */
export const TRACES_EXPORTERS = ['zipkin', 'otlp', 'none'] as const;
/** OpenTelemetry's sampler names (`OTEL_TRACES_SAMPLER`). */
export const TRACES_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

/** How a process traces; read by {@link loadTracingConfig}. */
export interface TracingConfig {
  /** `OTEL_TRACES_EXPORTER`: zipkin in development, otlp in production, none in tests; `OTEL_SDK_DISABLED=true` is none. */
  readonly exporter: (typeof TRACES_EXPORTERS)[number];
  /** `OTEL_EXPORTER_ZIPKIN_ENDPOINT`: Zipkin's span intake. */
  readonly zipkinUrl: string;
  /** `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`. */
  readonly otlpUrl: string;
  /** `OTEL_TRACES_SAMPLER`: every trace in development and tests, a share of them in production. */
  readonly sampler: (typeof TRACES_SAMPLERS)[number];
  /** `OTEL_TRACES_SAMPLER_ARG`: the share of traces kept by a ratio sampler, 0 to 1 (1, or 0.1 in production). */
  readonly samplerRatio: number;
  /** `OTEL_BSP_SCHEDULE_DELAY`: the longest a finished span waits before it is sent. */
  readonly exportDelayMs: number;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, key: string, allowed: readonly T[], fallback: T): T {
  const raw = env[key]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${key} must be one of ${allowed.join(', ')}, got "${env[key]}"`);
  return raw as T;
}

/**
 * Reads the tracing settings: OpenTelemetry's own variables, so that whatever a platform team
 * already sets for other services works here. Apart from the rest of the configuration, because a
 * process reads them before it loads anything else.
 */
export function loadTracingConfig(env: NodeJS.ProcessEnv = process.env): TracingConfig {
  const nodeEnv = env.NODE_ENV === 'production' || env.NODE_ENV === 'test' ? env.NODE_ENV : 'development';
  const production = nodeEnv === 'production';
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
  const exporter = disabled ? 'none' : oneOf(env, 'OTEL_TRACES_EXPORTER', TRACES_EXPORTERS, nodeEnv === 'test' ? 'none' : production ? 'otlp' : 'zipkin');
  const ratioRaw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const samplerRatio = ratioRaw ? Number(ratioRaw) : production ? 0.1 : 1;
  if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(ratioRaw || '0') || !(samplerRatio >= 0 && samplerRatio <= 1)) {
    throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, got "${env.OTEL_TRACES_SAMPLER_ARG}"`);
  }
  const otlpBase = env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces` : 'http://127.0.0.1:4318/v1/traces';
  return {
    exporter,
    zipkinUrl: url(env, 'OTEL_EXPORTER_ZIPKIN_ENDPOINT', 'http://127.0.0.1:9411/api/v2/spans', ['http:', 'https:']),
    otlpUrl: url(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', otlpBase, ['http:', 'https:']),
    sampler: oneOf(env, 'OTEL_TRACES_SAMPLER', TRACES_SAMPLERS, production ? 'parentbased_traceidratio' : 'parentbased_always_on'),
    samplerRatio,
    exportDelayMs: integerVar(env, 'OTEL_BSP_SCHEDULE_DELAY', 5_000, 10, 600_000),
  };
}

/**
 * Reads the configuration from environment variables. Every default works on a developer machine
 * with PostgreSQL, Redis and Kafka on 127.0.0.1; see the README's configuration table.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeEnv = env.NODE_ENV === 'production' || env.NODE_ENV === 'test' ? env.NODE_ENV : 'development';
  const jwtSecret = env.JWT_SECRET || DEVELOPMENT_JWT_SECRET;
  if (nodeEnv === 'production' && jwtSecret === DEVELOPMENT_JWT_SECRET) {
    throw new ConfigError('JWT_SECRET must be set in production');
  }
  if (Buffer.byteLength(jwtSecret) < 32) {
    throw new ConfigError('JWT_SECRET must be at least 32 bytes for HS256');
  }
  const subgraphSecret = env.SUBGRAPH_SECRET || null;
  if (subgraphSecret === null && nodeEnv === 'production') {
    throw new ConfigError('SUBGRAPH_SECRET must be set in production: the gateway sends it and every subgraph requires it');
  }
  if (subgraphSecret !== null) {
    // It travels as an HTTP header value: visible ASCII only, so no client rejects or rewrites it.
    if (!/^[\x21-\x7e]+$/.test(subgraphSecret)) throw new ConfigError('SUBGRAPH_SECRET must be printable ASCII without spaces');
    if (Buffer.byteLength(subgraphSecret) < 32) throw new ConfigError('SUBGRAPH_SECRET must be at least 32 bytes');
    // It is sent with every subgraph request; were it the signing key too, whoever saw one header could sign admin tokens.
    if (subgraphSecret === jwtSecret) throw new ConfigError('SUBGRAPH_SECRET must differ from JWT_SECRET');
  }
  const databasePrefix = env.DB_PREFIX || 'swiftcart';
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(databasePrefix)) {
    throw new ConfigError(`DB_PREFIX must be lower-case letters, digits and _, got "${databasePrefix}"`);
  }
  const servicePorts = Object.fromEntries(
    SERVICE_NAMES.map((name) => [name, integerVar(env, `${name.toUpperCase()}_PORT`, DEFAULT_SERVICE_PORTS[name])]),
  ) as Record<ServiceName, number>;
  const subgraphUrls: Partial<Record<ServiceName, readonly string[]>> = {};
  for (const name of SERVICE_NAMES) {
    const key = `${name.toUpperCase()}_URL`;
    const replicas = (env[key] ?? '').split(',').map((u) => u.trim()).filter(Boolean);
    if (replicas.length) subgraphUrls[name] = replicas.map((replica) => url({ [key]: replica }, key, '', ['http:', 'https:']));
  }
  const kafkaBrokers = (env.KAFKA_BROKERS || '127.0.0.1:9092').split(',').map((b) => b.trim()).filter(Boolean);
  for (const broker of kafkaBrokers) {
    if (!/^[^:\s]+:\d{1,5}$/.test(broker)) throw new ConfigError(`KAFKA_BROKERS entries must be host:port, got "${broker}"`);
  }
  const serviceRole = (env.SERVICE_ROLE?.trim() || 'all') as ServiceRole;
  if (!SERVICE_ROLES.includes(serviceRole)) {
    throw new ConfigError(`SERVICE_ROLE must be one of ${SERVICE_ROLES.join(', ')}, got "${env.SERVICE_ROLE}"`);
  }
  const kafkaReplicationFactor = integerVar(env, 'KAFKA_REPLICATION_FACTOR', 1, 1, 10);
  const kafkaMinInsyncReplicas = integerVar(env, 'KAFKA_MIN_INSYNC_REPLICAS', 1, 1, 10);
  const DAY_MS = 86_400_000;
  const kafkaRetentionMs = integerVar(env, 'KAFKA_RETENTION_MS', 7 * DAY_MS, 60_000, 3_650 * DAY_MS);
  const inboxRetentionMs = integerVar(env, 'INBOX_RETENTION_MS', 8 * DAY_MS, 60_000, 3_650 * DAY_MS);
  if (inboxRetentionMs <= kafkaRetentionMs) {
    throw new ConfigError(`INBOX_RETENTION_MS (${inboxRetentionMs}) must be longer than KAFKA_RETENTION_MS (${kafkaRetentionMs}): a redelivered event older than the inbox remembers would be applied twice`);
  }
  if (kafkaMinInsyncReplicas > kafkaReplicationFactor) {
    throw new ConfigError(`KAFKA_MIN_INSYNC_REPLICAS (${kafkaMinInsyncReplicas}) must not exceed KAFKA_REPLICATION_FACTOR (${kafkaReplicationFactor}): no write could ever succeed`);
  }
  return {
    env: nodeEnv,
    logLevel: env.LOG_LEVEL || (nodeEnv === 'test' ? 'warn' : 'info'),
    host: env.HOST || '127.0.0.1',
    databaseUrl: url(env, 'DATABASE_URL', 'postgresql://postgres@127.0.0.1:5432', ['postgresql:', 'postgres:']),
    databasePrefix,
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisPrefix: env.REDIS_PREFIX ?? 'swiftcart:',
    kafkaBrokers,
    kafkaTopicPrefix: env.KAFKA_TOPIC_PREFIX ?? '',
    // The broker accepts 6 s to 300 s (group.min/max.session.timeout.ms).
    kafkaSessionTimeoutMs: integerVar(env, 'KAFKA_SESSION_TIMEOUT_MS', 10_000, 6_000, 300_000),
    kafkaPartitions: integerVar(env, 'KAFKA_PARTITIONS', DEFAULT_KAFKA_PARTITIONS, 1, 1_000),
    kafkaReplicationFactor,
    kafkaMinInsyncReplicas,
    kafkaRetentionMs,
    outboxRetentionMs: integerVar(env, 'OUTBOX_RETENTION_MS', 3_600_000, 0, 3_650 * DAY_MS),
    inboxRetentionMs,
    retentionIntervalMs: integerVar(env, 'RETENTION_INTERVAL_MS', 60_000, 100, DAY_MS),
    consumerMaxDeliveries: integerVar(env, 'CONSUMER_MAX_DELIVERIES', 3, 1, 100),
    serviceRole,
    jwtSecret,
    subgraphSecret,
    gatewayPort: integerVar(env, 'GATEWAY_PORT', 4000),
    servicePorts,
    subgraphUrls,
    supergraphPath: path.resolve(REPO_ROOT, env.SUPERGRAPH_PATH || 'schema/supergraph.graphql'),
    productCacheTtlSeconds: integerVar(env, 'PRODUCT_CACHE_TTL_SECONDS', 60, 1, 86_400),
    readinessTimeoutMs: integerVar(env, 'READINESS_TIMEOUT_MS', 2_000, 100, 60_000),
    databasePoolSize: integerVar(env, 'DB_POOL_SIZE', 10, 1, 500),
    databaseConnectTimeoutMs: integerVar(env, 'DB_CONNECT_TIMEOUT_MS', 10_000, 100, 600_000),
    vars: Object.freeze({ ...env }),
  };
}

/** The PostgreSQL database name of one service under this configuration. */
export function databaseName(config: Pick<Config, 'databasePrefix'>, service: ServiceName): string {
  return `${config.databasePrefix}_${service}`;
}

/** The connection URL of one service's own database. */
export function serviceDatabaseUrl(config: Pick<Config, 'databaseUrl' | 'databasePrefix'>, service: ServiceName): string {
  const u = new URL(config.databaseUrl);
  u.pathname = `/${databaseName(config, service)}`;
  return u.toString();
}

/**
 * Whether the module at `moduleUrl` is the process's entry point (`node file.ts`), so a script can
 * be both imported and run. Compares file paths, not URLs, so spaces and non-ASCII paths work.
 */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(moduleUrl);
}
