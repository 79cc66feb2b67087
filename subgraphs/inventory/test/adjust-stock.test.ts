/**
 * The admin `adjustStock` mutation against real PostgreSQL: values, versions, the audit trail,
 * the never-below-zero rule under concurrency, authorisation and input checks.
 * Run with `node --test subgraphs/inventory/test/`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { signToken } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { seedStock } from '../src/stock.ts';
import { EventTap } from '../../../test/support/participants.ts';
import { waitFor } from '../../../test/support/saga.ts';
import { ADJUST, auditCount, auditRows, em, setReserved, stockRow } from './support.ts';

describe('adjustStock', () => {
  let stack: TestStack;
  let admin: string;
  let customer: string;
  const adjust = (sku: string, delta: number, reason = 'cycle count', token: string | null = admin) =>
    stack.graphql(ADJUST, { variables: { sku, delta, reason }, token });

  before(async () => {
    stack = await startStack({ services: ['inventory'] });
    admin = await stack.token('admin-1', ['admin']);
    customer = await stack.token('customer-1', ['customer']);
  });
  after(() => stack?.close());

  test('an admin increases a never-stocked sku, then decreases it; versions and audit rows follow', async () => {
    assert.equal(await stockRow(stack, 'ADJ-1'), undefined);
    const up = await adjust('ADJ-1', 10, 'delivery from supplier');
    assert.equal(up.errors, undefined, JSON.stringify(up.errors));
    assert.equal(up.data.adjustStock.sku, 'ADJ-1');
    assert.deepEqual(
      { ...up.data.adjustStock, updatedAt: undefined },
      { sku: 'ADJ-1', onHand: 10, reserved: 0, available: 10, version: 1, updatedAt: undefined },
    );
    assert.ok(!Number.isNaN(Date.parse(up.data.adjustStock.updatedAt)));

    await setReserved(stack, 'ADJ-1', 2);
    const down = await adjust('ADJ-1', -3, 'damaged in storage');
    assert.equal(down.errors, undefined, JSON.stringify(down.errors));
    assert.deepEqual(
      { ...down.data.adjustStock, updatedAt: undefined },
      { sku: 'ADJ-1', onHand: 7, reserved: 2, available: 5, version: 2, updatedAt: undefined },
    );

    assert.deepEqual(await stockRow(stack, 'ADJ-1'), { on_hand: 7, reserved: 2, version: 2 });
    assert.deepEqual(await auditRows(stack, 'ADJ-1'), [
      { delta: 10, reason: 'delivery from supplier', actor: 'admin-1', on_hand_after: 10 },
      { delta: -3, reason: 'damaged in storage', actor: 'admin-1', on_hand_after: 7 },
    ]);
    // Reads after the mutation see the new figure.
    const read = await stack.graphql('{ stockLevel(sku: "ADJ-1") { onHand reserved available version } }');
    assert.deepEqual(read.data.stockLevel, { onHand: 7, reserved: 2, available: 5, version: 2 });
  });

  test('every adjustment is a StockAdjusted event on inventory.events.v1, keyed by the sku; a refused one is none', async () => {
    await using tap = await EventTap.start(stack.services.inventory!);
    await seedStock(em(stack), [{ sku: 'EVT-1', onHand: 4 }]);
    const refused = await adjust('EVT-1', -5, 'too many');
    assert.equal(refused.errors?.[0].extensions?.code, 'INSUFFICIENT_STOCK');
    const done = await adjust('EVT-1', 6, 'delivery 42');
    assert.equal(done.errors, undefined, JSON.stringify(done.errors));
    const [event] = await waitFor(
      () => {
        const found = tap.events.filter((e) => e.aggregateId === 'EVT-1');
        return found.length ? found : undefined;
      },
      'StockAdjusted on Kafka',
      15_000,
    );
    assert.equal(event.type, 'StockAdjusted');
    assert.deepEqual([event.source, event.aggregateType, event.causationId], ['inventory', 'Stock', null]);
    assert.deepEqual(event.data, { sku: 'EVT-1', delta: 6, reason: 'delivery 42', actor: 'admin-1', onHand: 10, reserved: 0, available: 10, version: 2 });
    const rows = await em(stack).execute<{ type: string }[]>(`select type from outbox where aggregateid = 'EVT-1' and topic is not null`);
    assert.deepEqual(
      rows.map((r) => r.type),
      ['StockAdjusted'],
      'the refused adjustment wrote no event',
    );
  });

  test('a later read in the same request sees the figure the mutation left', async () => {
    const result = await stack.graphql(
      `mutation {
      a: adjustStock(sku: "ADJ-2", delta: 5, reason: "first") { version product { stock { onHand version } } }
      b: adjustStock(sku: "ADJ-2", delta: 1, reason: "second") { version product { stock { onHand version } } }
    }`,
      { token: admin },
    );
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(result.data, {
      a: { version: 1, product: { stock: { onHand: 5, version: 1 } } },
      b: { version: 2, product: { stock: { onHand: 6, version: 2 } } },
    });
  });

  test('going below zero or below reserved is INSUFFICIENT_STOCK and writes nothing', async () => {
    await seedStock(em(stack), [{ sku: 'LOW-1', onHand: 5 }]);
    await setReserved(stack, 'LOW-1', 2);
    const audits = await auditCount(stack);

    const belowReserved = await adjust('LOW-1', -4);
    assert.equal(belowReserved.data, undefined, 'a non-null root field that failed nulls the whole data');
    assert.equal(belowReserved.errors?.[0].extensions?.code, 'INSUFFICIENT_STOCK');
    assert.match(belowReserved.errors![0].message, /5 on hand, 2 reserved, requested -4/);
    assert.deepEqual(
      { ...belowReserved.errors![0].extensions, code: undefined },
      { sku: 'LOW-1', onHand: 5, reserved: 2, available: 3, requested: -4, code: undefined },
    );
    const belowZero = await adjust('LOW-1', -6);
    assert.equal(belowZero.errors?.[0].extensions?.code, 'INSUFFICIENT_STOCK');

    const neverStocked = await adjust('LOW-NEVER', -1);
    assert.equal(neverStocked.errors?.[0].extensions?.code, 'INSUFFICIENT_STOCK');
    assert.match(neverStocked.errors![0].message, /0 on hand, 0 reserved, requested -1/);

    assert.deepEqual(await stockRow(stack, 'LOW-1'), { on_hand: 5, reserved: 2, version: 1 });
    assert.equal(await stockRow(stack, 'LOW-NEVER'), undefined);
    assert.equal(await auditCount(stack), audits, 'no audit row for a refused adjustment');

    // Exactly down to what is reserved is allowed.
    const exact = await adjust('LOW-1', -3);
    assert.equal(exact.errors, undefined, JSON.stringify(exact.errors));
    assert.deepEqual({ onHand: exact.data.adjustStock.onHand, available: exact.data.adjustStock.available }, { onHand: 2, available: 0 });
  });

  test('20 concurrent removals of one unit from 10 on hand: exactly 10 succeed, never negative', async () => {
    await seedStock(em(stack), [{ sku: 'RACE-1', onHand: 10 }]);
    const results = await Promise.all(Array.from({ length: 20 }, () => adjust('RACE-1', -1, 'race')));
    const ok = results.filter((r) => !r.errors);
    const refused = results.filter((r) => r.errors);
    assert.equal(ok.length, 10);
    assert.equal(refused.length, 10);
    assert.ok(
      refused.every((r) => r.errors![0].extensions?.code === 'INSUFFICIENT_STOCK'),
      JSON.stringify(refused.map((r) => r.errors)),
    );
    assert.deepEqual(
      ok.map((r) => r.data.adjustStock.onHand).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.deepEqual(
      ok.map((r) => r.data.adjustStock.version).sort((a, b) => a - b),
      [2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    );
    assert.deepEqual(await stockRow(stack, 'RACE-1'), { on_hand: 0, reserved: 0, version: 11 });
    const audits = await auditRows(stack, 'RACE-1');
    assert.equal(audits.filter((a) => a.reason === 'race').length, 10);
    assert.deepEqual(
      audits
        .filter((a) => a.reason === 'race')
        .map((a) => a.on_hand_after)
        .sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  test('20 concurrent first deliveries of a never-stocked sku all succeed (race-free upsert)', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => adjust('RACE-NEW', 1, 'delivery')));
    assert.deepEqual(
      results.filter((r) => r.errors).map((r) => r.errors),
      [],
    );
    assert.deepEqual(
      results.map((r) => r.data.adjustStock.version).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(await stockRow(stack, 'RACE-NEW'), { on_hand: 20, reserved: 0, version: 20 });
    assert.equal((await auditRows(stack, 'RACE-NEW')).length, 20);
  });

  test('without the admin role it is FORBIDDEN, checked before the input; a bad token is UNAUTHENTICATED', async () => {
    const audits = await auditCount(stack);
    const anonymous = await adjust('AUTH-1', 5, 'x', null);
    assert.equal(anonymous.errors?.[0].extensions?.code, 'FORBIDDEN');
    const asCustomer = await adjust('AUTH-1', 5, 'x', customer);
    assert.equal(asCustomer.errors?.[0].extensions?.code, 'FORBIDDEN');
    const badInputAsCustomer = await adjust('bad sku', 0, '', customer);
    assert.equal(badInputAsCustomer.errors?.[0].extensions?.code, 'FORBIDDEN');
    const forged = await signToken('x'.repeat(40), { sub: 'admin-1', roles: ['admin'] });
    const badSignature = await adjust('AUTH-1', 5, 'x', forged);
    assert.equal(badSignature.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    assert.equal(badSignature.status, 401);
    assert.equal(await stockRow(stack, 'AUTH-1'), undefined);
    assert.equal(await auditCount(stack), audits);
  });

  test('bad input is BAD_USER_INPUT naming the field, and writes nothing', async () => {
    const audits = await auditCount(stack);
    const cases: [string, number, string, string][] = [
      ['INPUT-1', 0, 'nothing', 'delta'],
      ['INPUT-1', 1_000_001, 'too many', 'delta'],
      ['INPUT-1', -1_000_001, 'too many', 'delta'],
      ['bad sku', 1, 'reason', 'sku'],
      ['x'.repeat(65), 1, 'reason', 'sku'],
      ['', 1, 'reason', 'sku'],
      ['INPUT-1', 1, '', 'reason'],
      ['INPUT-1', 1, '   ', 'reason'],
      ['INPUT-1', 1, 'r'.repeat(501), 'reason'],
    ];
    for (const [sku, delta, reason, field] of cases) {
      const result = await adjust(sku, delta, reason);
      assert.equal(result.errors?.[0].extensions?.code, 'BAD_USER_INPUT', `${sku} ${delta} ${reason.length}`);
      assert.equal(result.errors?.[0].extensions?.field, field);
    }
    assert.equal(await stockRow(stack, 'INPUT-1'), undefined);
    assert.equal(await auditCount(stack), audits);
    // The limits themselves are allowed.
    const max = await adjust('INPUT-1', 1_000_000, 'r'.repeat(500));
    assert.equal(max.errors, undefined, JSON.stringify(max.errors));
    assert.equal(max.data.adjustStock.onHand, 1_000_000);
    // Past the largest figure PostgreSQL's integer holds: BAD_USER_INPUT, not an internal error.
    await seedStock(em(stack), [{ sku: 'INPUT-MAX', onHand: 2_147_000_000 }]);
    const overflow = await adjust('INPUT-MAX', 1_000_000);
    assert.equal(overflow.errors?.[0].extensions?.code, 'BAD_USER_INPUT', JSON.stringify(overflow.errors));
    assert.deepEqual(await stockRow(stack, 'INPUT-MAX'), { on_hand: 2_147_000_000, reserved: 0, version: 1 });
  });
});
