/**
 * The admission gate's lag measure (admission.ts) against a real order database: the lag is the
 * age of the `lagRank`-th oldest PENDING order, so a few orders stuck for good do not close the
 * door, while as many stuck orders as the rank do.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createLogger } from '@swiftcart/platform';
import { type TestStack, startStack } from '../../../test/support/stack.ts';
import { SagaAdmission } from '../src/admission.ts';

describe('SagaAdmission lag rank', () => {
  let stack: TestStack;
  before(async () => {
    stack = await startStack({ services: ['order'] });
  });
  after(async () => {
    await stack?.close();
  });

  /** Inserts `count` PENDING orders placed `ageMs` ago. */
  async function pendingOrders(count: number, ageMs: number): Promise<void> {
    const em = stack.services.order!.runtime.db.fork();
    for (let i = 0; i < count; i++) {
      await em.execute(
        `insert into orders (id, customer_id, status, currency, total_amount, idempotency_key, request_hash, deadline_at, created_at, shipping_address, payment_method)
         values (?, 'c-admission', 'PENDING', 'EUR', 100, ?, 'h', now() + interval '1 hour', now() - (? * interval '1 millisecond'), ?::jsonb, 'tok_visa')`,
        [randomUUID(), randomUUID(), ageMs, JSON.stringify({ name: 'A', line1: 'B', city: 'C', postalCode: '1', country: 'DE' })],
      );
    }
  }

  test('four stuck orders leave the door open at rank 5; the fifth closes it; rank 1 closes it on the first', async () => {
    const db = stack.services.order!.runtime.db;
    const log = createLogger('admission-test', 'fatal');
    const ranked = new SagaAdmission({ db, log, maxLagMs: 1_000, probeIntervalMs: 50, lagRank: 5 });
    const oldest = new SagaAdmission({ db, log, maxLagMs: 1_000, probeIntervalMs: 50, lagRank: 1 });

    await pendingOrders(4, 60_000);
    await ranked.probe();
    await oldest.probe();
    assert.equal(ranked.lagMs, 0, 'fewer PENDING orders than the rank: no lag');
    assert.equal(ranked.isOpen, true);
    assert.ok(oldest.lagMs >= 60_000, `rank 1 measures the oldest: ${oldest.lagMs}`);
    assert.equal(oldest.isOpen, false);
    assert.throws(
      () => oldest.admit(),
      (error: any) => error.extensions?.code === 'OVERLOADED',
    );

    // A fresh order as the fifth: the fifth-oldest has waited no time, the door stays open.
    await pendingOrders(1, 0);
    await ranked.probe();
    assert.ok(ranked.lagMs < 1_000, `fifth-oldest is the fresh one: ${ranked.lagMs}`);
    assert.equal(ranked.isOpen, true);
    ranked.admit();

    // Enough old orders to reach the rank: a backlog, the door closes.
    await pendingOrders(1, 30_000);
    await ranked.probe();
    assert.ok(ranked.lagMs >= 30_000 && ranked.lagMs < 60_000, `fifth-oldest has waited 30 s: ${ranked.lagMs}`);
    assert.equal(ranked.isOpen, false);
  });
});
