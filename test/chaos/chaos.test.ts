/**
 * The chaos suite's short form (test/chaos/chaos.ts): one of each fault under a small load, on
 * scratch PostgreSQL, Redis and Kafka servers. `npm run chaos` runs the long form.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SHORT_FORM, formatReport, runChaos } from './chaos.ts';

test('under a steady load, every fault in turn loses nothing, applies nothing twice and leaves every subscriber current', { timeout: 900_000 }, async (t) => {
  const report = await runChaos({ ...SHORT_FORM, log: (line) => t.diagnostic(line) });
  const text = formatReport(report);
  t.diagnostic(text);
  assert.deepEqual(report.failures, [], text);
  // One window before the faults and one per fault, each with orders flowing again.
  assert.equal(report.windows.length, SHORT_FORM.faults!.length + 1);
  for (const window of report.windows.slice(1)) assert.notEqual(window.flowingAgainMs, null, `${window.fault}: orders never flowed again`);
  assert.ok(report.accepted >= SHORT_FORM.settleOrders * (SHORT_FORM.faults!.length + 1), `only ${report.accepted} orders accepted`);
  assert.ok((report.statuses.CONFIRMED ?? 0) > 0);
});
