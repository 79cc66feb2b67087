/**
 * `npm run analytics` (scripts/analytics.ts) as a process: help on stdout with exit 0, bad arguments
 * with the usage on stderr and exit 2, and a bad setting or an unreachable database as the one-line
 * `analytics: <command> failed: …` with exit 1, never a stack trace. None of it reaches Kafka,
 * PostgreSQL or Redis (the rebuild itself is tested in analytics.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Where nothing listens: a command that gets past its arguments fails at the database at once. */
const NOWHERE = {
  DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none',
  KAFKA_BROKERS: '127.0.0.1:1',
  REDIS_URL: 'redis://127.0.0.1:1',
};

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const execFileAsync = promisify(execFile);

/** Runs `node scripts/analytics.ts ...args` with `env` over the infrastructure's unreachable addresses. */
async function analytics(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  const options = { cwd: REPO_ROOT, env: { ...process.env, ...NOWHERE, LOG_LEVEL: 'fatal', ...env } };
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'analytics.ts'), ...args], options);
    return { code: 0, stdout, stderr };
  } catch (error) {
    // A non-zero exit rejects, with the exit code and the output on the error.
    const exited = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof exited.code !== 'number') throw error;
    return { code: exited.code, stdout: exited.stdout ?? '', stderr: exited.stderr ?? '' };
  }
}

const USAGE = /^usage: npm run analytics -- <command> \[options\]$/m;

/** The failure is one line on stderr, nothing on stdout, and no stack frame anywhere. */
function assertOneLineFailure(run: Run, pattern: RegExp) {
  assert.equal(run.code, 1, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.stderr.trimEnd().split('\n').length, 1, `one line expected, got:\n${run.stderr}`);
  assert.match(run.stderr.trimEnd(), pattern);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
}

describe('npm run analytics', () => {
  // Each run starts a Node process that loads the platform (about a second): all of them at once.
  let runs: Record<'help' | 'h' | 'helpWord' | 'unknown' | 'none' | 'stray' | 'badSetting' | 'noDatabase', Run>;
  before(async () => {
    const [help, h, helpWord, unknown, none, stray, badSetting, noDatabase] = await Promise.all([
      analytics(['--help']),
      analytics(['-h']),
      analytics(['help']),
      analytics(['bogus']),
      analytics([]),
      analytics(['status', '--bogus']),
      analytics(['status'], { DB_PREFIX: 'BAD' }),
      analytics(['rebuild']),
    ]);
    runs = { help, h, helpWord, unknown, none, stray, badSetting, noDatabase };
  });

  test('--help, -h and help print the usage on stdout and exit 0', () => {
    for (const run of [runs.help, runs.h, runs.helpWord]) {
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, USAGE);
      assert.match(run.stdout, /^ {2}rebuild \[--allow-truncated\]/m);
      assert.equal(run.stderr, '');
    }
  });

  test('an unknown command, no command or a stray option: exit 2, the reason and the usage on stderr', () => {
    for (const [run, reason] of [
      [runs.unknown, /^analytics: unknown command: bogus$/m],
      [runs.none, /^analytics: no command given$/m],
      [runs.stray, /^analytics: unexpected argument for status: --bogus$/m],
    ] as const) {
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, reason);
      assert.match(run.stderr, USAGE);
    }
  });

  test('a bad setting: exit 1 with the one-line message that names it, no stack trace', () => {
    assertOneLineFailure(runs.badSetting, /^analytics: status failed: DB_PREFIX must be lower-case letters, digits and _ .*got "BAD"$/);
  });

  test('an unreachable database: exit 1 with the one-line message, no stack trace', () => {
    assertOneLineFailure(runs.noDatabase, /^analytics: rebuild failed: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  });
});
