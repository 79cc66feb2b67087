import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, type SettingsEnv, commaList, flag, integer, invalid, oneOf, parseSettings, setting, text, url, urlList } from './settings.ts';

/** The services behind the gateway, in the order they are started. */
export const SERVICE_NAMES = ['product', 'inventory', 'order', 'payment', 'shipment', 'customer', 'cart', 'notification', 'analytics'] as const;

/** One of the SwiftCart services. */
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Replica k (from 0) of a service listens on its port + REPLICA_PORT_STEP·k (`npm start -- --replicas N`). */
export const REPLICA_PORT_STEP = 20;

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
 * (`npm start -- --workers`): ports 4011–4019 for the first replicas, free of the 4001–4009 block
 * that holds up to nine services' first API processes.
 */
export const WORKER_PORT_OFFSET = 10;

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
  customer: 4006,
  cart: 4007,
  notification: 4008,
  analytics: 4009,
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
  /** Signs tokens (`JWT_SECRET`); verification also accepts {@link Config.acceptedJwtSecrets}. */
  readonly jwtSecret: string;
  /** The secrets a token may be signed with: `JWT_SECRET`, then `JWT_PREVIOUS_SECRET` while a secret is rotated. */
  readonly acceptedJwtSecrets: readonly string[];
  /**
   * The gateway's credential towards the subgraphs (`SUBGRAPH_SECRET`, platform/src/gateway-credential.ts):
   * the gateway sends it, subgraphs require it. Null only outside production, when it is unset:
   * subgraphs then accept requests without it (and warn at start-up).
   */
  readonly subgraphSecret: string | null;
  /**
   * The credentials a subgraph accepts: `SUBGRAPH_SECRET`, then `SUBGRAPH_PREVIOUS_SECRET` while a
   * credential is rotated, so that gateways of the old and the new rollout are both let in. Empty when unset.
   */
  readonly acceptedSubgraphSecrets: readonly string[];
  readonly gatewayPort: number;
  readonly servicePorts: Readonly<Record<ServiceName, number>>;
  /**
   * Per-service routing URL overrides for the gateway (`PRODUCT_URL`, ...): one URL per replica of
   * the service (comma-separated in the variable); the gateway spreads its calls over them.
   */
  readonly subgraphUrls: Readonly<Partial<Record<ServiceName, readonly string[]>>>;
  readonly supergraphPath: string;
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
   * The environment this configuration was read from. Services do not read it: their own settings
   * are the `settings` schema of their module, which the platform parses from here once at start-up
   * (`runtime.settings`), as the gateway does with its own. It is kept because a configuration
   * carries its environment to them: a test stack builds one from its own environment rather than
   * `process.env`, and test crash points (`TEST_CRASH_AT`, platform/src/faults.ts) read it too.
   */
  readonly vars: Readonly<Record<string, string | undefined>>;
}

export { ConfigError };

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
 * process and a worker: replica k (from 0) on the service's port + 20·k, its worker on that port +
 * {@link WORKER_PORT_OFFSET}. Throws a {@link ConfigError} naming both when two would share a port
 * (a service port moved onto another's replica or worker).
 */
export function serviceInstances(
  options: { readonly replicas: number; readonly workers: boolean },
  ports: Readonly<Record<ServiceName, number>>,
): ServiceInstance[] {
  const instances = SERVICE_NAMES.flatMap((service) =>
    Array.from({ length: options.replicas }, (_, k): ServiceInstance[] => {
      const suffix = k === 0 ? '' : `-${k + 1}`;
      const port = replicaPort(ports[service], k);
      if (!options.workers) return [{ service, name: `${service}${suffix}`, role: 'all', port }];
      return [
        { service, name: `${service}${suffix}`, role: 'api', port },
        { service, name: `${service}-worker${suffix}`, role: 'worker', port: port + WORKER_PORT_OFFSET },
      ];
    }).flat(),
  );
  const byPort = new Map<number, string>();
  for (const { name, port } of instances) {
    const taken = byPort.get(port);
    if (taken) throw new ConfigError(`${taken} and ${name} would both listen on port ${port}: move one with <SERVICE>_PORT`);
    byPort.set(port, name);
  }
  return instances;
}

/**
 * Reads the integer environment variable `key` (`fallback` when unset or empty) by the rules of the
 * settings' {@link integer}; throws a {@link ConfigError} naming the variable and its bounds. For the
 * flags of scripts (`npm start`'s REPLICAS), which are no process's settings.
 */
export function integerVar(env: SettingsEnv, key: string, fallback: number, min = 0, max = 65_535): number {
  return parseSettings(z.object({ [key]: integer({ default: fallback, min, max }) }), env)[key];
}

/** Where spans go: a Zipkin server, an OTLP/HTTP endpoint (a collector), or nowhere. */
export const TRACES_EXPORTERS = ['zipkin', 'otlp', 'none'] as const;
/** OpenTelemetry's sampler names (`OTEL_TRACES_SAMPLER`). */
export const TRACES_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
/** pino's levels (`LOG_LEVEL`). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

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

const DAY_MS = 86_400_000;
const HTTP = ['http:', 'https:'];
const MAX_PORT = 65_535;

/** `PRODUCT_PORT`, `INVENTORY_PORT`, ...: one variable per service. */
type PerService<Suffix extends string, T> = { [K in ServiceName as `${Uppercase<K>}${Suffix}`]: T };

function upper(name: ServiceName): Uppercase<ServiceName> {
  return name.toUpperCase() as Uppercase<ServiceName>;
}

function perService<Suffix extends string, T>(suffix: Suffix, make: (name: ServiceName) => T): PerService<Suffix, T> {
  return Object.fromEntries(SERVICE_NAMES.map((name) => [`${upper(name)}${suffix}`, make(name)])) as PerService<Suffix, T>;
}

// Shared by both schemas below: tracing is read before the rest of the configuration.
/** A gateway credential (`SUBGRAPH_SECRET`, `SUBGRAPH_PREVIOUS_SECRET`); unset is null. */
function gatewayCredential(raw: string | undefined): string | null {
  if (!raw) return null;
  // It travels as an HTTP header value: visible ASCII only, so no client rejects or rewrites it.
  if (!/^[\x21-\x7e]+$/.test(raw)) invalid('must be printable ASCII without spaces');
  return Buffer.byteLength(raw) < 32 ? invalid('must be at least 32 bytes') : raw;
}

const nodeEnvSetting = setting((raw): Config['env'] => (raw === 'production' || raw === 'test' ? raw : 'development'), {
  default: '`development`',
  accepts: '`production` or `test`; anything else is `development`',
}).describe(
  '`production` turns off Sandbox and introspection, masks unexpected errors, requires `JWT_SECRET` and `SUBGRAPH_SECRET`, and refuses `EDGE_LIMITS=off` ([what else](docs/security.md#what-production-mode-changes))',
);

/**
 * The tracing settings: OpenTelemetry's own variables, so that whatever a platform team already
 * sets for other services works here (docs/operations.md, "Traces").
 */
export const tracingSettings = z.object({
  NODE_ENV: nodeEnvSetting,
  OTEL_SDK_DISABLED: flag().describe('`true` turns tracing off, whatever `OTEL_TRACES_EXPORTER` says'),
  OTEL_TRACES_EXPORTER: oneOf(TRACES_EXPORTERS, { default: undefined, defaultText: '`zipkin` (`otlp` in production, `none` in tests)' }).describe(
    'where spans go: a Zipkin server, an OTLP/HTTP endpoint (a collector), or nowhere; `none` registers no SDK at all',
  ),
  OTEL_EXPORTER_ZIPKIN_ENDPOINT: url({ default: 'http://127.0.0.1:9411/api/v2/spans', protocols: HTTP }).describe(
    "Zipkin's span intake (`npm start` sets it to its Zipkin)",
  ),
  OTEL_EXPORTER_OTLP_ENDPOINT: url({ default: undefined, protocols: HTTP, defaultText: '`http://127.0.0.1:4318`' }).describe(
    "the OTLP/HTTP collector (docker compose: Jaeger's); spans go to its `/v1/traces`",
  ),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url({ default: undefined, protocols: HTTP, defaultText: '`OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`' }).describe(
    "where OTLP spans go, when that is not the collector's usual path",
  ),
  OTEL_TRACES_SAMPLER: oneOf(TRACES_SAMPLERS, {
    default: undefined,
    defaultText: '`parentbased_always_on` (`parentbased_traceidratio` in production)',
  }).describe('which traces are kept: the gateway decides, the services follow the decision in `traceparent`'),
  OTEL_TRACES_SAMPLER_ARG: setting(
    (raw): number | undefined => {
      const value = raw?.trim();
      if (!value) return undefined;
      // A decimal only: Number() would also take "0x1" or "1e-1".
      return /^(0(\.\d+)?|1(\.0+)?)$/.test(value) ? Number(value) : invalid(`must be a number from 0 to 1, got "${raw}"`);
    },
    { default: '`1` (`0.1` in production)', accepts: '0 to 1' },
  ).describe('the share of traces a ratio sampler keeps'),
  OTEL_BSP_SCHEDULE_DELAY: integer({ default: 5_000, min: 10, max: 600_000, unit: 'ms' }).describe(
    'the longest a finished span waits before it is sent (tests use 100)',
  ),
});

/**
 * Reads the tracing settings ({@link tracingSettings}). Apart from the rest of the configuration,
 * because a process reads them before it loads anything else.
 */
export function loadTracingConfig(env: NodeJS.ProcessEnv = process.env): TracingConfig {
  const s = parseSettings(tracingSettings, env);
  const production = s.NODE_ENV === 'production';
  const otlpBase = (s.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://127.0.0.1:4318').replace(/\/+$/, '');
  return {
    exporter: s.OTEL_SDK_DISABLED ? 'none' : (s.OTEL_TRACES_EXPORTER ?? (s.NODE_ENV === 'test' ? 'none' : production ? 'otlp' : 'zipkin')),
    zipkinUrl: s.OTEL_EXPORTER_ZIPKIN_ENDPOINT,
    otlpUrl: s.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? `${otlpBase}/v1/traces`,
    sampler: s.OTEL_TRACES_SAMPLER ?? (production ? 'parentbased_traceidratio' : 'parentbased_always_on'),
    samplerRatio: s.OTEL_TRACES_SAMPLER_ARG ?? (production ? 0.1 : 1),
    exportDelayMs: s.OTEL_BSP_SCHEDULE_DELAY,
  };
}

/**
 * The settings every SwiftCart process shares, read by {@link loadConfig}. Every default works on a
 * developer machine with PostgreSQL, Redis and Kafka on 127.0.0.1.
 */
export const platformSettings = z
  .object({
    NODE_ENV: nodeEnvSetting,
    LOG_LEVEL: oneOf(LOG_LEVELS, { default: undefined, defaultText: '`info` (`warn` in tests)' }).describe('the pino level of every log'),
    HOST: text({ default: '127.0.0.1' }).describe('the address every server binds'),
    GATEWAY_PORT: integer({ default: 4000, min: 0, max: MAX_PORT }).describe("the gateway's port"),
    ...perService('_PORT', (name) =>
      integer({ default: DEFAULT_SERVICE_PORTS[name], min: 0, max: MAX_PORT }).describe(
        `the ${name} service's port; replica k (from 0) of \`npm start -- --replicas N\` listens on it + ${REPLICA_PORT_STEP}·k`,
      ),
    ),
    SUPERGRAPH_PATH: text({ default: 'schema/supergraph.graphql' }).describe('the supergraph the gateway serves, relative to the repository root'),
    ...perService('_URL', (name) =>
      urlList({ protocols: HTTP, defaultText: "the supergraph's routing URL" }).describe(
        `overrides the ${name} subgraph's URL at the gateway; several name its replicas, which the gateway takes turns over (\`npm start -- --replicas N\` sets it)`,
      ),
    ),
    SERVICE_ROLE: oneOf(SERVICE_ROLES, { default: 'all' }).describe(
      'what a service process runs: `all` (API, relay, consumers, sweeper), `api` (GraphQL only; ready without Kafka) or `worker` (relay, consumers and sweeper, with its own pool; answers only `/healthz` and `/readyz`). `npm start -- --workers` sets it',
    ),
    JWT_SECRET: setting(
      (raw) => {
        const secret = raw || DEVELOPMENT_JWT_SECRET;
        return Buffer.byteLength(secret) < 32 ? invalid('must be at least 32 bytes for HS256') : secret;
      },
      { default: `a public development secret (\`${DEVELOPMENT_JWT_SECRET}\`)`, accepts: 'at least 32 bytes' },
    ).describe('the HS256 signing secret of every token; required in production'),
    JWT_PREVIOUS_SECRET: setting(
      (raw): string | null => {
        if (!raw) return null;
        return Buffer.byteLength(raw) < 32 ? invalid('must be at least 32 bytes for HS256') : raw;
      },
      { default: 'unset', accepts: 'at least 32 bytes, not `JWT_SECRET`' },
    ).describe(
      'a second secret tokens may be signed with, while `JWT_SECRET` is rotated (the one being retired, or the coming one): tokens it signed are accepted, nothing is signed with it ([rotating secrets](docs/deploy.md#rotating-secrets))',
    ),
    SUBGRAPH_SECRET: setting(gatewayCredential, {
      default: 'unset (`npm start`: random per run)',
      accepts: 'printable ASCII, at least 32 bytes, not `JWT_SECRET`',
    }).describe(
      "the gateway's credential, sent in `x-swiftcart-gateway-secret`; a subgraph with it refuses requests without it (401). Required in production; unset (outside production), subgraphs accept anyone and warn",
    ),
    SUBGRAPH_PREVIOUS_SECRET: setting(gatewayCredential, {
      default: 'unset',
      accepts: 'printable ASCII, at least 32 bytes, not `SUBGRAPH_SECRET` nor a JWT secret',
    }).describe(
      'a second gateway credential subgraphs accept while `SUBGRAPH_SECRET` is rotated (the one being retired, or the coming one); the gateway sends only `SUBGRAPH_SECRET` ([rotating secrets](docs/deploy.md#rotating-secrets))',
    ),
    DATABASE_URL: url({ default: 'postgresql://postgres@127.0.0.1:5432', protocols: ['postgresql:', 'postgres:'] }).describe(
      'the PostgreSQL server; each service uses the database `<DB_PREFIX>_<service>`',
    ),
    DB_PREFIX: text({
      default: 'swiftcart',
      pattern: /^[a-z][a-z0-9_]{0,40}$/,
      patternText: 'lower-case letters, digits and _ (a letter first, 41 at most)',
    }).describe('the prefix of every database name'),
    REDIS_URL: url({ default: 'redis://127.0.0.1:6379', protocols: ['redis:', 'rediss:'] }).describe('the Redis server'),
    REDIS_PREFIX: text({ default: 'swiftcart:', emptyIsUnset: false }).describe(
      "the prefix of every Redis key and channel, so test runs never see each other's data",
    ),
    KAFKA_BROKERS: setting(
      (raw) =>
        commaList(raw || '127.0.0.1:9092').map((broker) => (/^[^:\s]+:\d{1,5}$/.test(broker) ? broker : invalid(`entries must be host:port, got "${broker}"`))),
      { default: '`127.0.0.1:9092`', accepts: 'comma-separated `host:port`' },
    ).describe('the Kafka brokers; `npm start` starts a local broker on this port when nothing answers'),
    KAFKA_TOPIC_PREFIX: text({ default: '', emptyIsUnset: false }).describe(
      "the prefix of every topic and consumer group, so test runs never see each other's messages",
    ),
    KAFKA_PARTITIONS: integer({ default: DEFAULT_KAFKA_PARTITIONS, min: 1, max: 1_000, defaultText: 'one per core, at least 3' }).describe(
      'partitions of each event topic the platform creates: how many consumers of one group can work at once. Existing topics keep theirs (a warning says when they have fewer)',
    ),
    KAFKA_REPLICATION_FACTOR: integer({ default: 1, min: 1, max: 10 }).describe(
      "copies of each topic the platform creates; 3 in production (one local broker can hold only 1, and more is refused with the broker's reason)",
    ),
    KAFKA_MIN_INSYNC_REPLICAS: integer({ default: 1, min: 1, max: 10 }).describe(
      "copies that must have a write before the producer's `acks=all` succeeds, at most `KAFKA_REPLICATION_FACTOR`; 2 with 3 copies",
    ),
    KAFKA_RETENTION_MS: integer({ default: 7 * DAY_MS, min: 60_000, max: 3_650 * DAY_MS, unit: 'ms' }).describe(
      'how long Kafka keeps the events of the topics the platform creates',
    ),
    OUTBOX_RETENTION_MS: integer({ default: 3_600_000, min: 0, max: 3_650 * DAY_MS, unit: 'ms' }).describe(
      'published outbox rows (and projected live changes) are deleted this long after; rows not yet published never are',
    ),
    INBOX_RETENTION_MS: integer({ default: 8 * DAY_MS, min: 60_000, max: 3_650 * DAY_MS, unit: 'ms' }).describe(
      'inbox rows are deleted this long after processing; must be longer than `KAFKA_RETENTION_MS`, or a late redelivery could apply twice',
    ),
    RETENTION_INTERVAL_MS: integer({ default: 60_000, min: 100, max: DAY_MS, unit: 'ms' }).describe('how often each worker prunes its outbox and inbox'),
    CONSUMER_MAX_DELIVERIES: integer({ default: 3, min: 1, max: 100 }).describe(
      'how many times a consumer may be handed an event and die before finishing it; the next handing dead-letters it unapplied',
    ),
    // The broker accepts 6 s to 300 s (group.min/max.session.timeout.ms).
    KAFKA_SESSION_TIMEOUT_MS: integer({ default: 10_000, min: 6_000, max: 300_000, unit: 'ms' }).describe(
      'how long a consumer may go without a heartbeat before its partitions go to another replica, and how long a restarted process waits for its own old membership to expire; shorter recovers sooner, too short evicts a busy one (ADR 0017)',
    ),
    READINESS_TIMEOUT_MS: integer({ default: 2_000, min: 100, max: 60_000, unit: 'ms' }).describe('how long `/readyz` waits for each dependency'),
    DB_POOL_SIZE: integer({ default: 10, min: 1, max: 500 }).describe("connections in each service process's database pool"),
    DB_CONNECT_TIMEOUT_MS: integer({ default: 10_000, min: 100, max: 600_000, unit: 'ms' }).describe(
      'how long a statement waits for a pooled connection (or a new one) before it fails as `SERVICE_UNAVAILABLE`',
    ),
  })
  .superRefine((s, ctx) => {
    const refuse = (variable: string, message: string) => ctx.addIssue({ code: 'custom', path: [variable], message, input: s[variable as keyof typeof s] });
    if (s.NODE_ENV === 'production' && s.JWT_SECRET === DEVELOPMENT_JWT_SECRET) refuse('JWT_SECRET', 'must be set in production');
    if (s.NODE_ENV === 'production' && s.SUBGRAPH_SECRET === null)
      refuse('SUBGRAPH_SECRET', 'must be set in production: the gateway sends it and every subgraph requires it');
    // It is sent with every subgraph request; were it the signing key too, whoever saw one header could sign admin tokens.
    if (s.SUBGRAPH_SECRET === s.JWT_SECRET) refuse('SUBGRAPH_SECRET', 'must differ from JWT_SECRET');
    if (s.JWT_PREVIOUS_SECRET !== null && s.JWT_PREVIOUS_SECRET === s.JWT_SECRET) refuse('JWT_PREVIOUS_SECRET', 'must differ from JWT_SECRET');
    if (s.SUBGRAPH_PREVIOUS_SECRET !== null) {
      if (s.SUBGRAPH_SECRET === null) refuse('SUBGRAPH_PREVIOUS_SECRET', 'needs SUBGRAPH_SECRET: it is accepted beside it, never alone');
      else if (s.SUBGRAPH_PREVIOUS_SECRET === s.SUBGRAPH_SECRET) refuse('SUBGRAPH_PREVIOUS_SECRET', 'must differ from SUBGRAPH_SECRET');
      if ([s.JWT_SECRET, s.JWT_PREVIOUS_SECRET].includes(s.SUBGRAPH_PREVIOUS_SECRET)) refuse('SUBGRAPH_PREVIOUS_SECRET', 'must differ from the JWT secrets');
    }
    if (s.SUBGRAPH_SECRET !== null && s.SUBGRAPH_SECRET === s.JWT_PREVIOUS_SECRET) refuse('SUBGRAPH_SECRET', 'must differ from JWT_PREVIOUS_SECRET');
    if (s.INBOX_RETENTION_MS <= s.KAFKA_RETENTION_MS) {
      refuse(
        'INBOX_RETENTION_MS',
        `(${s.INBOX_RETENTION_MS}) must be longer than KAFKA_RETENTION_MS (${s.KAFKA_RETENTION_MS}): a redelivered event older than the inbox remembers would be applied twice`,
      );
    }
    if (s.KAFKA_MIN_INSYNC_REPLICAS > s.KAFKA_REPLICATION_FACTOR) {
      refuse(
        'KAFKA_MIN_INSYNC_REPLICAS',
        `(${s.KAFKA_MIN_INSYNC_REPLICAS}) must not exceed KAFKA_REPLICATION_FACTOR (${s.KAFKA_REPLICATION_FACTOR}): no write could ever succeed`,
      );
    }
  });

/**
 * Reads the configuration ({@link platformSettings}) from environment variables; throws one
 * {@link ConfigError} naming every variable at fault. See the README's configuration tables.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const s = parseSettings(platformSettings, env);
  const subgraphUrls: Partial<Record<ServiceName, readonly string[]>> = {};
  for (const name of SERVICE_NAMES) {
    const replicas = s[`${upper(name)}_URL` as const];
    if (replicas.length) subgraphUrls[name] = replicas;
  }
  return {
    env: s.NODE_ENV,
    logLevel: s.LOG_LEVEL ?? (s.NODE_ENV === 'test' ? 'warn' : 'info'),
    host: s.HOST,
    databaseUrl: s.DATABASE_URL,
    databasePrefix: s.DB_PREFIX,
    redisUrl: s.REDIS_URL,
    redisPrefix: s.REDIS_PREFIX,
    kafkaBrokers: s.KAFKA_BROKERS,
    kafkaTopicPrefix: s.KAFKA_TOPIC_PREFIX,
    kafkaSessionTimeoutMs: s.KAFKA_SESSION_TIMEOUT_MS,
    kafkaPartitions: s.KAFKA_PARTITIONS,
    kafkaReplicationFactor: s.KAFKA_REPLICATION_FACTOR,
    kafkaMinInsyncReplicas: s.KAFKA_MIN_INSYNC_REPLICAS,
    kafkaRetentionMs: s.KAFKA_RETENTION_MS,
    outboxRetentionMs: s.OUTBOX_RETENTION_MS,
    inboxRetentionMs: s.INBOX_RETENTION_MS,
    retentionIntervalMs: s.RETENTION_INTERVAL_MS,
    consumerMaxDeliveries: s.CONSUMER_MAX_DELIVERIES,
    serviceRole: s.SERVICE_ROLE,
    jwtSecret: s.JWT_SECRET,
    acceptedJwtSecrets: s.JWT_PREVIOUS_SECRET ? [s.JWT_SECRET, s.JWT_PREVIOUS_SECRET] : [s.JWT_SECRET],
    subgraphSecret: s.SUBGRAPH_SECRET,
    acceptedSubgraphSecrets: [s.SUBGRAPH_SECRET, s.SUBGRAPH_PREVIOUS_SECRET].filter((secret) => secret !== null),
    gatewayPort: s.GATEWAY_PORT,
    servicePorts: Object.fromEntries(SERVICE_NAMES.map((name) => [name, s[`${upper(name)}_PORT` as const]])) as Record<ServiceName, number>,
    subgraphUrls,
    supergraphPath: path.resolve(REPO_ROOT, s.SUPERGRAPH_PATH),
    readinessTimeoutMs: s.READINESS_TIMEOUT_MS,
    databasePoolSize: s.DB_POOL_SIZE,
    databaseConnectTimeoutMs: s.DB_CONNECT_TIMEOUT_MS,
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
