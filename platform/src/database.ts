import { MikroORM, type EntityManager, type Options } from '@mikro-orm/postgresql';
import { Migrator, type Migration } from '@mikro-orm/migrations';
import type { EntitySchema } from '@mikro-orm/core';
import { type Config, type ServiceName, serviceDatabaseUrl } from './config.ts';
import type { Logger } from './logger.ts';

export type { EntityManager } from '@mikro-orm/postgresql';
export { Migration } from '@mikro-orm/migrations';

/** A migration of one service, named by its ordinal so the order is visible in the table. */
export interface NamedMigration {
  readonly name: string;
  readonly class: new (...args: ConstructorParameters<typeof Migration>) => Migration;
}

/** One service's connection to its own PostgreSQL database. */
export interface Database extends AsyncDisposable {
  readonly orm: MikroORM;
  /** A fresh EntityManager with its own identity map, for one request or one unit of work. */
  fork(): EntityManager;
  /** SQL statements sent since start, when query counting is on (tests assert batching with it). */
  readonly queryCount: number;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  /** Resolves when the database answers `select 1`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** How to open a service database. */
export interface DatabaseOptions {
  readonly config: Config;
  readonly service: ServiceName;
  readonly entities: readonly EntitySchema<any, any>[];
  readonly migrations: readonly NamedMigration[];
  readonly log: Logger;
  /** Count every SQL statement (off by default: it formats each query). */
  readonly countQueries?: boolean;
  /** Overrides `config.databasePoolSize`. */
  readonly poolSize?: number;
}

/** Connects to the service's own database (`<DB_PREFIX>_<service>`); migrations are explicit, never discovered. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  let queryCount = 0;
  const mikroOptions: Options = {
    clientUrl: serviceDatabaseUrl(options.config, options.service),
    entities: [...options.entities],
    extensions: [Migrator],
    pool: { min: 0, max: options.poolSize ?? options.config.databasePoolSize },
    migrations: {
      migrationsList: options.migrations.map((m) => ({ name: m.name, class: m.class })),
      snapshot: false,
      silent: true,
      transactional: true,
      allOrNothing: true,
    },
    // Queries are logged only to count them; MikroORM's own log lines stay out of our JSON logs.
    debug: options.countQueries ? ['query'] : false,
    logger: options.countQueries ? () => { queryCount++; } : (message: string) => options.log.debug({ orm: message }),
    allowGlobalContext: false,
  };
  const orm = await MikroORM.init(mikroOptions);
  const close = () => orm.close(true);
  return {
    orm,
    fork: () => orm.em.fork() as EntityManager,
    get queryCount() { return queryCount; },
    async migrate() {
      const applied = await orm.migrator.up();
      return applied.map((m) => m.name);
    },
    async ping() {
      await orm.em.getConnection().execute('select 1');
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Socket errors of a connection that is refused, cut or timed out. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/** PostgreSQL's SQLSTATEs for "the server is going away or not there yet": shutdown, crash recovery, no slot. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
const UNREACHABLE_MESSAGE = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down|in recovery mode)/i;

/**
 * Whether `error` (or what caused it) says the database could not be reached, rather than that the
 * work itself failed: a refused or dropped connection, a server shutting down or recovering
 * (SQLSTATE class 08, 57P01–57P03), no connection slot left. Such work is worth doing again
 * later, however often, and must never be given up on as poison.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e = error as { code?: unknown; message?: unknown; cause?: unknown } | null | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && (UNREACHABLE_CODES.has(e.code) || UNAVAILABLE_STATES.has(e.code) || e.code.startsWith('08'))) return true;
    if (typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}
