/**
 * Applies every service's pending migrations to its own database: `npm run migrate`, or
 * `npm run migrate -- order cart` for some of them (a Kubernetes migration Job runs one).
 * Services also migrate themselves at start-up; this is for deploys and for the seed.
 */
import { SERVICE_NAMES, type ServiceName, createLogger, isMain, loadConfig, openRuntime, type Config } from '@swiftcart/platform';
import { loadServiceModule } from './services.ts';
import { ensureDatabases } from './infra.ts';

/** Creates missing databases and migrates `services` (all by default); returns the migrations applied per service. */
export async function migrateAll(config: Config, services: readonly ServiceName[] = SERVICE_NAMES): Promise<Record<string, string[]>> {
  await ensureDatabases(config, services);
  const applied: Record<string, string[]> = {};
  for (const name of services) {
    const module = await loadServiceModule(name);
    await using opened = await openRuntime(module, { config, migrate: false });
    applied[name] = await opened.runtime.db.migrate();
  }
  return applied;
}

if (isMain(import.meta.url)) {
  const log = createLogger('migrate', 'info');
  const names = process.argv.slice(2);
  const unknown = names.filter((name) => !(SERVICE_NAMES as readonly string[]).includes(name));
  if (unknown.length) {
    console.error(`migrate: unknown service ${unknown.map((name) => `"${name}"`).join(', ')}; the services are ${SERVICE_NAMES.join(', ')}`);
    process.exit(2);
  }
  try {
    const applied = await migrateAll(loadConfig(), names.length ? (names as ServiceName[]) : SERVICE_NAMES);
    for (const [service, names] of Object.entries(applied)) log.info({ target: service, applied: names }, names.length ? 'migrated' : 'up to date');
  } catch (error) {
    log.fatal({ err: error }, 'migration failed');
    process.exit(1);
  }
}
