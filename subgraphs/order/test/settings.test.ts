/**
 * The order service's settings reach it through the platform: parsed once at start-up from the
 * configuration's environment (`runtime.settings`), and a bad value stops the service naming it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ConfigError, REPO_ROOT, type ServiceModule, startService } from '@swiftcart/platform';
import { dropDatabases, ensureDatabases } from '../../../scripts/infra.ts';
import { clearRedisPrefix, isolatedConfig } from '../../../test/support/stack.ts';
import type { OrderContext } from '../src/context.ts';
import { orderService } from '../src/service.ts';
import { type OrderSettings, orderSettings } from '../src/settings.ts';

describe('order settings', () => {
  test('are parsed once however many parts of the service use them, and handed over as runtime.settings', async () => {
    let parses = 0;
    const counted: ServiceModule<OrderContext, OrderSettings> = {
      ...orderService,
      settings: orderSettings.transform((settings) => {
        parses += 1;
        return settings;
      }),
    };
    // A process that serves the API and runs the workers: the resolvers, the admission probe and
    // the deadline sweeper all start, and each reads the settings.
    const config = isolatedConfig({ SERVICE_ROLE: 'all', ORDER_DEADLINE_MS: '123456', ORDER_SWEEP_INTERVAL_MS: '250', ORDER_ADMISSION_MAX_LAG_MS: '0' });
    await ensureDatabases(config, ['order']);
    try {
      await using service = await startService(counted, { config, port: 0 });
      assert.equal(parses, 1);
      assert.deepEqual(service.runtime.settings, {
        deadlineMs: 123_456,
        sweepIntervalMs: 250,
        admissionMaxLagMs: 0,
        admissionProbeMs: 200,
        admissionLagRank: 5,
      });
    } finally {
      await dropDatabases(config, ['order']);
      await clearRedisPrefix(config);
    }
  });

  test('a bad value stops startService before it connects to anything, naming the variable', async () => {
    // No database was created for this configuration: reaching PostgreSQL would fail differently.
    const config = isolatedConfig({ ORDER_DEADLINE_MS: 'abc', ORDER_ADMISSION_LAG_RANK: '0' });
    await assert.rejects(startService(orderService, { config, port: 0 }), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(
        error.message,
        'ORDER_DEADLINE_MS must be an integer from 100 to 604800000, got "abc"; ORDER_ADMISSION_LAG_RANK must be an integer from 1 to 1000, got "0"',
      );
      return true;
    });
  });

  test('a bad value makes the order process exit 1 with the variable in its log', () => {
    const run = spawnSync(process.execPath, ['subgraphs/order/src/main.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_ENV: 'test', ORDER_PORT: '0', ORDER_SWEEP_INTERVAL_MS: '5' },
      timeout: 30_000,
    });
    assert.equal(run.status, 1, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /order failed to start/);
    assert.match(run.stdout, /ORDER_SWEEP_INTERVAL_MS must be an integer from 10 to 3600000, got \\"5\\"/);
  });
});
