/**
 * Test harness: starts real services (and optionally the gateway) in this process on random ports,
 * against real PostgreSQL, Redis and Kafka, isolated by a random database prefix, Redis key prefix
 * and Kafka topic prefix. Disposing the stack stops everything and removes what it created.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  type Config,
  type Logger,
  type Role,
  type RunningService,
  type ServiceName,
  SERVICE_NAMES,
  gatewayCredentialHeaders,
  loadConfig,
  signToken,
  startService,
} from '@swiftcart/platform';
import type { RunningGateway } from '../../gateway/src/gateway.ts';
import { dropDatabases, ensureDatabases } from '../../scripts/infra.ts';
import { loadServiceModule } from '../../scripts/services.ts';

export { loadServiceModule };

/** A GraphQL response as tests see it. */
export interface GraphQLResult<T = any> {
  readonly status: number;
  readonly data?: T;
  readonly errors?: readonly { message: string; extensions?: { code?: string; [key: string]: unknown }; path?: readonly (string | number)[] }[];
}

/** What a started gateway exposes to tests: its URL, live figures, reload and close. */
export type TestGateway = RunningGateway;

/** What to start. */
export interface StackOptions {
  /** Default: every service. */
  readonly services?: readonly ServiceName[];
  readonly gateway?: boolean;
  /** Count SQL statements per service (`stack.services.x.runtime.db.queryCount`). */
  readonly countQueries?: boolean;
  /** Extra environment for the isolated configuration. */
  readonly env?: NodeJS.ProcessEnv;
  /** The logger of each started process (tests that assert what was logged); default: the platform's. */
  readonly log?: (name: ServiceName | 'gateway') => Logger;
}

/** A running, isolated set of services. */
export interface TestStack extends AsyncDisposable {
  readonly config: Config;
  /** Each service's settings are typed `any` here: a test knows which service it reads them from. */
  readonly services: Partial<Record<ServiceName, RunningService<any>>>;
  readonly gateway: TestGateway | null;
  /** A token signed with this stack's secret. */
  token(sub: string, roles: readonly Role[]): Promise<string>;
  /** The gateway's credential (SUBGRAPH_SECRET header), for a test that calls a subgraph itself. */
  readonly subgraphHeaders: Readonly<Record<string, string>>;
  /** POSTs an operation to `url` (default: the gateway, else the only service), with the gateway's credential when `url` is a service's. */
  graphql<T = any>(query: string, options?: { variables?: Record<string, unknown>; token?: string | null; url?: string }): Promise<GraphQLResult<T>>;
  close(): Promise<void>;
}

/** Rate limits and caps (gateway/src/rate-limits.ts) that no test meets unless it sets its own. */
export const TEST_RATE_LIMITS: Readonly<Record<string, string>> = {
  RATE_LIMIT_HTTP_PER_WINDOW: '1000000',
  RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '1000000',
  RATE_LIMIT_SOCKETS_PER_WINDOW: '1000000',
  RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW: '1000000',
  MAX_SUBSCRIPTIONS_PER_SOCKET: '100000',
  MAX_SOCKETS_PER_CLIENT: '100000',
};

/**
 * A configuration whose databases, Redis keys and topics belong to this test run only, with a
 * random SUBGRAPH_SECRET, so the subgraphs require the gateway's credential as in production.
 */
export function isolatedConfig(env: NodeJS.ProcessEnv = {}): Config {
  const id = randomBytes(4).toString('hex');
  return loadConfig({
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
    DB_PREFIX: `swiftcart_t${id}`,
    REDIS_PREFIX: `swiftcart-test:${id}:`,
    KAFKA_TOPIC_PREFIX: `test.${id}.`,
    SUBGRAPH_SECRET: randomBytes(32).toString('base64url'),
    // The same on every machine and whatever the developer's shell says: tests that count
    // partitions, or start a process of one role, say so themselves.
    KAFKA_PARTITIONS: '3',
    SERVICE_ROLE: 'all',
    // Tests send hundreds of requests and sockets from 127.0.0.1: the gateway's rate limits and
    // caps are on, but out of their way (gateway/test/edge-*.test.ts set their own).
    ...TEST_RATE_LIMITS,
    ...env,
  });
}

/**
 * The environment a service started as a child process needs to share `config`'s isolation (its
 * databases, Redis prefix, topic prefix and partitions) and accept its gateway's credential.
 */
export function childServiceEnv(config: Config): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    DB_PREFIX: config.databasePrefix,
    REDIS_PREFIX: config.redisPrefix,
    KAFKA_TOPIC_PREFIX: config.kafkaTopicPrefix,
    KAFKA_PARTITIONS: String(config.kafkaPartitions),
    SUBGRAPH_SECRET: config.subgraphSecret ?? '',
  };
}

/** Deletes every Redis key under the configuration's prefix. */
export async function clearRedisPrefix(config: Config): Promise<void> {
  const redis = new Redis(config.redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redisPrefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Sends one GraphQL request over HTTP; `extraHeaders` go with it (the gateway's credential, for a subgraph). */
export async function postGraphQL<T = any>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
  extraHeaders: Readonly<Record<string, string>> = {},
): Promise<GraphQLResult<T>> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...extraHeaders };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const text = await response.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${url} answered ${response.status} with non-JSON: ${text.slice(0, 300)}`);
  }
  return { status: response.status, data: body.data ?? undefined, errors: body.errors };
}

/** Starts the given services (default: all five) and, if asked, the gateway in front of them. */
export async function startStack(options: StackOptions = {}): Promise<TestStack> {
  const names = options.services ?? SERVICE_NAMES;
  // Stacks without inventory leave every order PENDING, which closes placeOrder's admission after
  // 2 s; admission control has a test of its own that turns it on.
  const config = isolatedConfig({ ORDER_ADMISSION_MAX_LAG_MS: '0', ...options.env });
  await ensureDatabases(config, names);
  const services: Partial<Record<ServiceName, RunningService<any>>> = {};
  let gateway: TestGateway | null = null;
  const close = async () => {
    await gateway?.close();
    await Promise.allSettled(Object.values(services).map((s) => s.close()));
    await dropDatabases(config, names);
    await clearRedisPrefix(config);
  };
  try {
    const modules = new Map(await Promise.all(names.map(async (name) => [name, await loadServiceModule(name)] as const)));
    const start = async (name: ServiceName, serviceConfig: Config) => {
      services[name] = await startService(modules.get(name)!, { config: serviceConfig, port: 0, countQueries: options.countQueries, log: options.log?.(name) });
    };
    // Services that call others (the cart) start second, told where the first ones listen.
    const callers = names.filter((name) => modules.get(name)!.peers?.length);
    for (const caller of callers) {
      const missing = modules.get(caller)!.peers!.filter((peer) => !names.includes(peer));
      // Else it would call the default ports, where a developer's `npm start` may be listening.
      if (missing.length) throw new Error(`${caller} calls ${missing.join(' and ')}: start them in the stack too`);
    }
    await Promise.all(names.filter((name) => !callers.includes(name)).map((name) => start(name, config)));
    const peerUrls = Object.fromEntries(Object.entries(services).map(([name, s]) => [`${name.toUpperCase()}_URL`, s.url]));
    if (callers.length) {
      const callerConfig = loadConfig({ ...config.vars, ...peerUrls });
      await Promise.all(callers.map((name) => start(name, callerConfig)));
    }
    if (options.gateway) {
      const { startGateway } = await import('../../gateway/src/gateway.ts');
      const subgraphUrls = Object.fromEntries(Object.entries(services).map(([name, s]) => [name, s.url]));
      gateway = await startGateway({ config, port: 0, subgraphUrls, log: options.log?.('gateway') });
    }
  } catch (error) {
    await close();
    throw error;
  }
  const defaultUrl = () => gateway?.url ?? (names.length === 1 ? services[names[0]]!.url : undefined);
  const subgraphHeaders = gatewayCredentialHeaders(config.subgraphSecret);
  const serviceOrigins = new Set(Object.values(services).map((s) => new URL(s.url).origin));
  return {
    config,
    services,
    gateway,
    token: (sub, roles) => signToken(config.jwtSecret, { sub, roles }),
    subgraphHeaders,
    graphql(query, opts = {}) {
      const url = opts.url ?? defaultUrl();
      if (!url) throw new Error('no default URL: pass options.url');
      // A test calling a subgraph stands in for the gateway; one calling the gateway is a client.
      return postGraphQL(url, query, opts.variables, opts.token, serviceOrigins.has(new URL(url).origin) ? subgraphHeaders : {});
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
