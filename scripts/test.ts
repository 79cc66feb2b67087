/**
 * `npm test`: makes sure the real infrastructure is there (starting the local Kafka broker when
 * nothing answers), then runs every test file with Node's test runner, whose summary ends the output.
 * `npm test -- path/to/file.test.ts ...` runs only those files.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform';
import { ensureInfrastructure, stopKafka } from './infra.ts';

const SEARCH_ROOTS = ['platform', 'subgraphs', 'gateway', 'clients', 'scripts', 'bench', 'test'];

/** Every `*.test.ts` under the project's own folders, in a stable order. */
export function findTestFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      if (entry === 'node_modules' || entry.startsWith('.')) continue;
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry.endsWith('.test.ts')) found.push(path.relative(REPO_ROOT, full));
    }
  };
  for (const root of SEARCH_ROOTS) {
    try { walk(path.join(REPO_ROOT, root)); } catch { /* a folder that does not exist yet */ }
  }
  return found.sort();
}

const infra = await ensureInfrastructure({ log: (message) => console.log(`[test] ${message}`) });
const requested = process.argv.slice(2);
const files = requested.length ? requested : findTestFiles();
console.log(`[test] ${files.length} test files`);
const runner = spawn(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=2', '--test-timeout=180000', ...files],
  { cwd: REPO_ROOT, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
const code = await new Promise<number>((resolve) => runner.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
// A broker this run started is stopped again, quietly, so the runner's summary stays the last output.
if (infra.kafka.started) await stopKafka().catch(() => undefined);
process.exit(code);
