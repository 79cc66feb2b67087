/**
 * Applies every service's pending migrations to its own database: `npm run migrate`.
 * Services also migrate themselves at start-up; this is for deploys and for the seed.
 */
import { SERVICE_NAMES, createLogger, isMain, loadConfig, openRuntime, type Config } from '@swiftcart/platform';
import { loadServiceModule } from './services.ts';
import { ensureDatabases } from './infra.ts';

/** Creates missing databases and migrates all five; returns the migrations applied per service. */
export async function migrateAll(config: Config): Promise<Record<string, string[]>> {
  await ensureDatabases(config);
  const applied: Record<string, string[]> = {};
  for (const name of SERVICE_NAMES) {
    const module = await loadServiceModule(name);
    await using opened = await openRuntime(module, { config, migrate: false });
    applied[name] = await opened.runtime.db.migrate();
  }
  return applied;
}

if (isMain(import.meta.url)) {
  const log = createLogger('migrate', 'info');
  try {
    const applied = await migrateAll(loadConfig());
    for (const [service, names] of Object.entries(applied)) log.info({ target: service, applied: names }, names.length ? 'migrated' : 'up to date');
  } catch (error) {
    log.fatal({ err: error }, 'migration failed');
    process.exit(1);
  }
}
