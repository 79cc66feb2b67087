/**
 * The Prometheus configuration in deploy/prometheus/, and the queries of the Grafana dashboard, as
 * Prometheus's own `promtool` reads them. Installs promtool (Debian's `prometheus`) where it is
 * missing and this process is root; skipped only where neither holds.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '@swiftcart/platform';
import { installDebianPackage } from '../scripts/infra.ts';
import { writePrometheusConfig } from '../scripts/observability.ts';

const DIR = path.join(REPO_ROOT, 'deploy', 'prometheus');
const skip = promtoolMissing();

/** Why the checks cannot run, or false: promtool comes with Debian's prometheus, installed here on first use where this process may. */
function promtoolMissing(): string | false {
  if (spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0) return false;
  try {
    installDebianPackage('prometheus', '/usr/bin/promtool', 'the Prometheus configuration checks', (line) => console.log(`# ${line}`));
    return false;
  } catch (error) {
    return (error as Error).message;
  }
}

function promtool(...args: string[]) {
  return spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8' });
}

test('promtool accepts the alert rules', { skip }, () => {
  const result = promtool('check', 'rules', 'alerts.yml');
  assert.equal(result.status, 0, result.stdout + result.stderr);
  assert.match(result.stdout, /SUCCESS: 4 rules found/);
});

test("promtool accepts both scrape configurations, rules included: npm start's and docker compose's", { skip }, () => {
  for (const config of ['prometheus.yml', 'prometheus.compose.yml']) {
    const result = promtool('check', 'config', config);
    assert.equal(result.status, 0, config + result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS: 4 rules found/, config);
  }
});

test('every query of the Grafana dashboard is valid PromQL', { skip }, () => {
  const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'deploy', 'grafana', 'dashboards', 'swiftcart.json'), 'utf8')) as {
    panels: { id: number; targets?: { expr: string }[] }[];
  };
  // Grafana's variables replaced by values of their kind, each query as a recording rule.
  const rules = dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target, i) => ({
      record: `dashboard:panel_${panel.id}_${i}`,
      expr: target.expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '1h').replaceAll('$service', '.*'),
    })),
  );
  assert.ok(rules.length >= 20, `${rules.length} queries`);
  const dir = mkdtempSync(path.join(tmpdir(), 'swiftcart-dashboard-'));
  try {
    writeFileSync(path.join(dir, 'dashboard.rules.yml'), JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
    const result = promtool('check', 'rules', path.join(dir, 'dashboard.rules.yml'));
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the scrape configuration npm start writes for its processes is valid, rules included', { skip }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'swiftcart-prometheus-'));
  try {
    const file = writePrometheusConfig(dir, ['127.0.0.1:4000', '127.0.0.1:4001', '127.0.0.1:4011']);
    const result = promtool('check', 'config', file);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /SUCCESS: 4 rules found/);
    assert.match(readFileSync(file, 'utf8'), /targets: \["127\.0\.0\.1:4000", "127\.0\.0\.1:4001", "127\.0\.0\.1:4011"\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
