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
    // pg's Pool options: without a limit, a checkout waits for ever on a pool that has nothing to give.
    driverOptions: { connectionTimeoutMillis: options.config.databaseConnectTimeoutMs },
    migrations: {
      migrationsList: options.migrations.map((m) => ({ name: m.name, class: m.class })),
      snapshot: false,
      silent: true,
      transactional: true,
      allOrNothing: true,
    },
    // Queries are logged only to count them; MikroORM's own log lines stay out of our JSON logs.
    debug: options.countQueries ? ['query'] : false,
    logger: options.countQueries
      ? () => {
          queryCount++;
        }
      : (message: string) => options.log.debug({ orm: message }),
    allowGlobalContext: false,
  };
  const orm = await MikroORM.init(mikroOptions);
  const close = () => orm.close(true);
  return {
    orm,
    fork: () => orm.em.fork() as EntityManager,
    get queryCount() {
      return queryCount;
    },
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

/** Registers a side effect (a Redis publish, a metric) to run only once the transaction has committed. */
export type AfterCommit = (effect: () => void | Promise<void>) => void;

/**
 * Runs `work` in a new transaction on a fork of `source` (a {@link Database} or an EntityManager)
 * and, once it has committed, the effects it registered with `afterCommit`, in order. A failed
 * effect is logged (with `logContext`), never thrown: the transaction stands, and the effects are
 * the kind a later change or a re-read makes good. Nothing runs when the transaction fails, so the
 * effects of a failed attempt are dropped with it. Returns what `work` returned.
 */
export async function inTransaction<T>(
  source: { fork(): EntityManager },
  log: Logger,
  work: (tx: EntityManager, afterCommit: AfterCommit) => Promise<T>,
  logContext: Readonly<Record<string, unknown>> = {},
): Promise<T> {
  const effects: (() => void | Promise<void>)[] = [];
  const result = await source.fork().transactional((tx) =>
    work(tx, (effect) => {
      effects.push(effect);
    }),
  );
  for (const effect of effects) {
    try {
      await effect();
    } catch (error) {
      log.error({ ...logContext, err: error }, 'after-commit effect failed');
    }
  }
  return result;
}
