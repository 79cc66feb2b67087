/**
 * `npm run lint` inside `npm test`: ESLint's type-aware rules (floating promises, unused code) and
 * Biome's format check over the whole tree, each a test, so a finding shows in the runner's summary.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform';

const BIN = path.join(REPO_ROOT, 'node_modules', '.bin');

function run(command: string, args: readonly string[]) {
  return spawnSync(path.join(BIN, command), args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 170_000 });
}

describe('lint and format', () => {
  it('ESLint finds nothing (`npm run lint`)', () => {
    const result = run('eslint', ['--max-warnings', '0', '.']);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`.trim().slice(-6_000));
  });

  it('every file is formatted as Biome formats it (`npm run format` rewrites them)', () => {
    const result = run('biome', ['format', '--max-diagnostics=20', '.']);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`.trim().slice(-6_000));
  });
});
