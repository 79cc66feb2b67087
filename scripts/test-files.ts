/**
 * Which test files there are, and which of them need the shared infrastructure (Kafka, PostgreSQL,
 * Redis). scripts/test.ts starts the infrastructure only for a run that has a file needing it, and
 * `npm run test:unit` runs {@link UNIT_TESTS} alone. The classification cannot go stale silently:
 * scripts/test-guard.ts runs every file listed here with Kafka, PostgreSQL and Redis addresses where
 * nothing listens (in `npm test` and `npm run test:unit` alike), so a listed file that starts to need
 * them fails; a listed file that no longer exists stops the runner.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (scripts/..); not the platform's REPO_ROOT, so that the guard loads nothing of the platform before a test does. */
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The pure tests, `npm run test:unit`: no Kafka, PostgreSQL or Redis, a few seconds each at most. */
export const UNIT_TESTS: readonly string[] = [
  'clients/sdk/test/client.test.ts',
  'clients/sdk/test/operations.test.ts',
  'clients/sdk/test/portability.test.ts',
  'clients/sdk/test/version.test.ts',
  'clients/storefront/test/sales.test.ts',
  'clients/storefront/test/server.test.ts',
  'gateway/test/data-source.test.ts',
  'gateway/test/dedup-rules.test.ts',
  'gateway/test/entity-batcher.test.ts',
  'gateway/test/fetcher.test.ts',
  'gateway/test/limits-defaults.test.ts',
  'gateway/test/plan-execution.test.ts',
  'gateway/test/replicas.test.ts',
  'gateway/test/result-shaping.test.ts',
  'gateway/test/token.test.ts',
  'platform/test/auth.test.ts',
  'platform/test/bundle.test.ts',
  'platform/test/catalogue.test.ts',
  'platform/test/config.test.ts',
  'platform/test/input.test.ts',
  'platform/test/kafka-log.test.ts',
  'platform/test/messaging.test.ts',
  'platform/test/pagination.test.ts',
  'platform/test/peer.test.ts',
  'platform/test/resilience.test.ts',
  'platform/test/tracing.test.ts',
  'scripts/supervisor.test.ts',
  'scripts/test-files.test.ts',
  'subgraphs/analytics/test/buckets.test.ts',
  'subgraphs/analytics/test/cli.test.ts',
  'subgraphs/cart/test/carts.test.ts',
  'subgraphs/cart/test/stock.test.ts',
  'subgraphs/notification/test/messages.test.ts',
  'subgraphs/order/test/commands.test.ts',
  'subgraphs/order/test/saga.test.ts',
  'subgraphs/payment/test/authorization.test.ts',
  'subgraphs/payment/test/provider.test.ts',
  'test/compose.test.ts',
  'test/event-schemas.test.ts',
  'test/dockerfile.test.ts',
  'test/k8s.test.ts',
  'test/smtp-server.test.ts',
  'test/trusted-documents.test.ts',
];

/** Whole-repository checks that need no infrastructure either, but take too long for `test:unit`. */
export const CHECKS_WITHOUT_INFRASTRUCTURE: readonly string[] = ['test/contracts.test.ts', 'test/lint.test.ts'];

/** Where the guarded files find Kafka, PostgreSQL and Redis: a port where nothing listens (connections are refused). */
export const UNREACHABLE_INFRASTRUCTURE: Readonly<Record<string, string>> = {
  KAFKA_BROKERS: '127.0.0.1:1',
  DATABASE_URL: 'postgresql://no-infrastructure@127.0.0.1:1/none',
  REDIS_URL: 'redis://127.0.0.1:1',
};

const WITHOUT_INFRASTRUCTURE = new Set([...UNIT_TESTS, ...CHECKS_WITHOUT_INFRASTRUCTURE]);

/** A test file's path relative to the repository, with `/` separators (what the lists hold). */
export function repoPath(file: string): string {
  return path.relative(REPO_ROOT, path.resolve(REPO_ROOT, file)).split(path.sep).join('/');
}

/** Whether running `file` (a test file, a folder or a glob) may need Kafka, PostgreSQL or Redis: anything not listed may. */
export function needsInfrastructure(file: string): boolean {
  return !WITHOUT_INFRASTRUCTURE.has(repoPath(file));
}

/** The listed files that do not exist (renamed or deleted without updating the lists). */
export function missingListedFiles(): string[] {
  return [...WITHOUT_INFRASTRUCTURE].filter((file) => {
    try {
      return !statSync(path.join(REPO_ROOT, file)).isFile();
    } catch {
      return true;
    }
  });
}

const SEARCH_ROOTS = ['platform', 'subgraphs', 'gateway', 'clients', 'scripts', 'bench', 'test'];

/** Every `*.test.ts` under the project's own folders, relative to the repository, in a stable order. */
export function findTestFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      if (entry === 'node_modules' || entry.startsWith('.')) continue;
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry.endsWith('.test.ts')) found.push(repoPath(full));
    }
  };
  for (const root of SEARCH_ROOTS) {
    try {
      walk(path.join(REPO_ROOT, root));
    } catch {
      /* a folder that does not exist yet */
    }
  }
  return found.sort();
}

/**
 * The environment a test process runs `file` with: for a file listed as needing no infrastructure,
 * the infrastructure's addresses point where nothing listens, so using it fails at once.
 */
export function guardedEnvironment(file: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return needsInfrastructure(file) ? env : { ...env, ...UNREACHABLE_INFRASTRUCTURE };
}
