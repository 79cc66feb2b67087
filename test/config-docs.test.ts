/** The README's configuration tables are what the settings schemas say now (scripts/config-docs.ts). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform';
import { CONFIG_END, CONFIG_START, README_FILE, renderConfigTables, withConfigTables } from '../scripts/config-docs.ts';

describe('the README configuration tables', () => {
  it('are what `npm run docs:config` generates from the settings schemas now', async () => {
    const readme = readFileSync(README_FILE, 'utf8');
    assert.equal(readme, withConfigTables(readme, await renderConfigTables()), 'stale configuration tables: run `npm run docs:config`');
  });

  it('list every owner, with its variables and their defaults and bounds', async () => {
    const tables = await renderConfigTables();
    assert.ok(tables.startsWith(CONFIG_START) && tables.endsWith(CONFIG_END));
    for (const title of ['Platform: every process', 'Gateway', 'Product service', 'Order service', 'Payment service'])
      assert.match(tables, new RegExp(`^### ${title}$`, 'm'));
    assert.match(tables, /^\| `ORDER_DEADLINE_MS` \| `600000` \(10 minutes\) \| .* — 100 ms to 7 days \|$/m);
    assert.match(tables, /^\| `DB_POOL_SIZE` \| `10` \| .* — 1 to 500 \|$/m);
    assert.match(tables, /^\| `SERVICE_ROLE` \| `all` \| .* — `all`, `api` or `worker` \|$/m);
    assert.match(tables, /^\| `RATE_LIMIT_WINDOW_SECONDS` \| `60` \(1 minute\) \|/m);
    assert.doesNotMatch(tables, /PAYMENT_CIRCUIT_FAILURES/, 'a replaced variable is no setting');
    assert.equal(tables.match(/^\| `NODE_ENV` /gm)?.length, 1, 'a variable two platform schemas read is listed once');
  });

  it('`npm run docs:config -- --check` fails on a stale README and passes once it is rewritten', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-config-docs-'));
    try {
      const copy = path.join(dir, 'README.md');
      writeFileSync(copy, readFileSync(README_FILE, 'utf8').replace(/^\| `DB_POOL_SIZE` \| `10` \|/m, '| `DB_POOL_SIZE` | `20` |'));
      const run = (...args: string[]) =>
        spawnSync(process.execPath, ['scripts/config-docs.ts', '--readme', copy, ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
      const stale = run('--check');
      assert.equal(stale.status, 1, stale.stdout);
      assert.match(stale.stderr, /README\.md is stale: run `npm run docs:config`/);
      assert.equal(run().status, 0);
      assert.equal(readFileSync(copy, 'utf8'), readFileSync(README_FILE, 'utf8'));
      assert.equal(run('--check').status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a README without the markers is refused rather than left alone', () => {
    assert.throws(() => withConfigTables('# SwiftCart\n', 'tables'), /config:start/);
  });
});
