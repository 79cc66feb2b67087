/**
 * `npm test`: runs every test file with Node's test runner, whose summary ends the output, after
 * making sure the real infrastructure is there (starting the local Kafka broker when nothing answers).
 * `npm test -- path/to/file.test.ts ...` runs only those files, and touches the infrastructure only
 * when one of them needs it. `npm run test:unit` (`--unit`) runs the pure tests alone, in seconds,
 * without Kafka, PostgreSQL or Redis. Which files need what: scripts/test-files.ts.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform';
import { ensureInfrastructure, stopKafka } from './infra.ts';
import { UNIT_TESTS, findTestFiles, missingListedFiles, needsInfrastructure } from './test-files.ts';

const args = process.argv.slice(2);
const unit = args[0] === '--unit';
if (unit && args.length > 1) {
  console.error('[test] --unit runs the files of UNIT_TESTS (scripts/test-files.ts); to run some files, use `npm test -- <files>`');
  process.exit(2);
}
const missing = missingListedFiles();
if (missing.length) {
  console.error(`[test] scripts/test-files.ts lists files that do not exist: ${missing.join(', ')}`);
  process.exit(2);
}
const files = unit ? [...UNIT_TESTS] : args.length ? args : findTestFiles();
const needed = files.filter(needsInfrastructure);
const infra = needed.length
  ? await ensureInfrastructure({ log: (message) => console.log(`[test] ${message}`) })
  : (console.log('[test] no file here needs Kafka, PostgreSQL or Redis: none is started or checked'), null);
console.log(`[test] ${files.length} test files`);
const runner = spawn(
  process.execPath,
  [
    '--test',
    '--test-reporter=spec',
    // The pure tests have the machine to themselves; with the infrastructure, two files at a time.
    `--test-concurrency=${needed.length ? 2 : Math.max(2, availableParallelism())}`,
    `--test-timeout=${needed.length ? 180_000 : 60_000}`,
    '--import',
    path.join(REPO_ROOT, 'scripts', 'test-guard.ts'),
    ...files,
  ],
  { cwd: REPO_ROOT, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'test' } },
);
const code = await new Promise<number>((resolve) => runner.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
// A broker this run started is stopped again, quietly, so the runner's summary stays the last output.
if (infra?.kafka.started) await stopKafka().catch(() => undefined);
process.exit(code);
