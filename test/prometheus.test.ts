/**
 * The Prometheus configuration in deploy/prometheus/ as Prometheus's own `promtool` reads it. Runs
 * where promtool is installed (Debian: `apt-get install prometheus`), and is skipped elsewhere.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '@swiftcart/platform';

const DIR = path.join(REPO_ROOT, 'deploy', 'prometheus');
const installed = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = installed ? false : 'promtool is not installed (apt-get install prometheus)';

function promtool(...args: string[]) {
  return spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });
}

test('promtool accepts the alert rules', { skip }, () => {
  const result = promtool('check', 'rules', 'alerts.yml');
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /SUCCESS: 4 rules found/);
});

test('promtool accepts the scrape configuration, rules included', { skip }, () => {
  const result = promtool('check', 'config', 'prometheus.yml');
  assert.equal(result.status, 0, result.stdout + result.stderr);
});
