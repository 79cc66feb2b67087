/** The test runner's classification (scripts/test-files.ts) and the guard that keeps it honest (scripts/test-guard.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CHECKS_WITHOUT_INFRASTRUCTURE,
  UNIT_TESTS,
  UNREACHABLE_INFRASTRUCTURE,
  findTestFiles,
  guardedEnvironment,
  missingListedFiles,
  needsInfrastructure,
} from './test-files.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('test files', () => {
  it('every listed file is a test file the runner finds, listed once', () => {
    assert.deepEqual(missingListedFiles(), []);
    const found = new Set(findTestFiles());
    const listed = [...UNIT_TESTS, ...CHECKS_WITHOUT_INFRASTRUCTURE];
    assert.deepEqual(
      listed.filter((file) => !found.has(file)),
      [],
    );
    assert.equal(new Set(listed).size, listed.length, 'a file listed twice');
  });

  it('only the listed files go without infrastructure, however their path is written', () => {
    assert.equal(needsInfrastructure('platform/test/config.test.ts'), false);
    assert.equal(needsInfrastructure('./platform/test/config.test.ts'), false);
    assert.equal(needsInfrastructure(path.join(ROOT, 'platform', 'test', 'config.test.ts')), false);
    assert.equal(needsInfrastructure('test/contracts.test.ts'), false);
    assert.equal(needsInfrastructure('test/e2e/saga-lifecycle.test.ts'), true);
    assert.equal(needsInfrastructure('platform/test/'), true, 'a folder may hold anything');
  });

  it('a listed file gets addresses where nothing listens; any other file keeps the environment', () => {
    const env = { KAFKA_BROKERS: 'kafka:9092', DATABASE_URL: 'postgresql://db', REDIS_URL: 'redis://cache', OTHER: 'kept' };
    assert.deepEqual(guardedEnvironment('platform/test/config.test.ts', env), { ...env, ...UNREACHABLE_INFRASTRUCTURE });
    assert.deepEqual(guardedEnvironment('test/e2e/saga-lifecycle.test.ts', env), env);
  });

  it('the guard, loaded into a test process, applies it before the file runs', () => {
    const show = 'console.log(JSON.stringify([process.env.KAFKA_BROKERS, process.env.DATABASE_URL, process.env.REDIS_URL]))';
    const run = (file: string, context: string | undefined) => {
      const env: NodeJS.ProcessEnv = { ...process.env, KAFKA_BROKERS: 'kafka:9092', DATABASE_URL: 'postgresql://db', REDIS_URL: 'redis://cache' };
      if (context) env.NODE_TEST_CONTEXT = context;
      else delete env.NODE_TEST_CONTEXT;
      // With -e, the first argument after the code is process.argv[1], where the test runner puts the file.
      const result = spawnSync(process.execPath, ['--import', path.join(ROOT, 'scripts', 'test-guard.ts'), '-e', show, path.join(ROOT, file)], {
        env,
        encoding: 'utf8',
      });
      assert.equal(result.status, 0, result.stderr);
      return JSON.parse(result.stdout);
    };
    const unreachable = [UNREACHABLE_INFRASTRUCTURE.KAFKA_BROKERS, UNREACHABLE_INFRASTRUCTURE.DATABASE_URL, UNREACHABLE_INFRASTRUCTURE.REDIS_URL];
    assert.deepEqual(run('platform/test/config.test.ts', 'child-v8'), unreachable);
    assert.deepEqual(run('test/e2e/saga-lifecycle.test.ts', 'child-v8'), ['kafka:9092', 'postgresql://db', 'redis://cache']);
    assert.deepEqual(run('platform/test/config.test.ts', undefined), ['kafka:9092', 'postgresql://db', 'redis://cache'], "only in a test runner's process");
  });
});
