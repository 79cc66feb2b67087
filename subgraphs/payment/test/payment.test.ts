import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { Payment, Refund, type PaymentStatus } from '../src/entities.ts';

const ENTITIES = `query ($representations: [_Any!]!) {
  _entities(representations: $representations) {
    ... on Order { id payment { id orderId status amount { amount currency } method attempts failureReason createdAt updatedAt } }
  }
}`;

const orderRefs = (ids: readonly string[]) => ({ representations: ids.map((id) => ({ __typename: 'Order', id })) });

describe('payment subgraph', () => {
  let stack: TestStack;
  let url: string;
  let alice: string;
  let bob: string;
  let admin: string;
  const orders = { paid: randomUUID(), declined: randomUUID(), pending: randomUUID(), bobs: randomUUID(), unpaid: randomUUID() };
  const payments: Record<string, string> = {};

  async function insertPayment(
    orderId: string,
    customerId: string,
    status: PaymentStatus,
    amount: number,
    failureReason: string | null = null,
  ): Promise<string> {
    const em = stack.services.payment!.runtime.db.fork();
    const id = randomUUID();
    em.create(Payment, {
      id,
      orderId,
      customerId,
      status,
      amount,
      currency: 'EUR',
      method: 'tok_visa',
      attempts: status === 'PENDING' ? 0 : 1,
      failureReason,
      providerRef: status === 'AUTHORIZED' ? `prov_${id}` : null,
    });
    await em.flush();
    return id;
  }

  before(async () => {
    stack = await startStack({ services: ['order', 'payment', 'shipment'], countQueries: true });
    url = stack.services.payment!.url;
    // The outbox relay polls on the same pool; the reads under test must be the only queries counted.
    await stack.services.payment!.relay?.stop();
    [alice, bob, admin] = await Promise.all([stack.token('alice', ['customer']), stack.token('bob', ['customer']), stack.token('root', ['admin'])]);
    payments.paid = await insertPayment(orders.paid, 'alice', 'AUTHORIZED', 4499);
    payments.declined = await insertPayment(orders.declined, 'alice', 'DECLINED', 1200, 'card declined');
    payments.pending = await insertPayment(orders.pending, 'alice', 'PENDING', 300);
    payments.bobs = await insertPayment(orders.bobs, 'bob', 'AUTHORIZED', 999);
  });

  after(async () => {
    await stack?.close();
  });

  test('_entities resolves the payments of three orders in one SQL query', async () => {
    const db = stack.services.payment!.runtime.db;
    const before = db.queryCount;
    const result = await stack.graphql(ENTITIES, { url, token: alice, variables: orderRefs([orders.paid, orders.declined, orders.pending]) });
    assert.equal(db.queryCount - before, 1);
    assert.equal(result.errors, undefined);
    const [paid, declined, pending] = result.data._entities;
    assert.equal(paid.id, orders.paid);
    assert.deepEqual(
      { ...paid.payment, createdAt: undefined, updatedAt: undefined },
      {
        id: payments.paid,
        orderId: orders.paid,
        status: 'AUTHORIZED',
        amount: { amount: 4499, currency: 'EUR' },
        method: 'tok_visa',
        attempts: 1,
        failureReason: null,
        createdAt: undefined,
        updatedAt: undefined,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(paid.payment.createdAt)));
    assert.equal(declined.payment.id, payments.declined);
    assert.equal(declined.payment.status, 'DECLINED');
    assert.equal(declined.payment.failureReason, 'card declined');
    assert.deepEqual(declined.payment.amount, { amount: 1200, currency: 'EUR' });
    assert.equal(pending.payment.id, payments.pending);
    assert.equal(pending.payment.attempts, 0);
  });

  test('an order without a payment has a null payment; an id that is no UUID matches nothing', async () => {
    const result = await stack.graphql(ENTITIES, { url, token: alice, variables: orderRefs([orders.unpaid, 'not-a-uuid']) });
    assert.equal(result.errors, undefined);
    assert.deepEqual(result.data._entities, [
      { id: orders.unpaid, payment: null },
      { id: 'not-a-uuid', payment: null },
    ]);
  });

  test("another customer's payment is FORBIDDEN, never silently null", async () => {
    const result = await stack.graphql(ENTITIES, { url, token: bob, variables: orderRefs([orders.bobs, orders.paid]) });
    assert.equal(result.data._entities[0].payment.id, payments.bobs);
    assert.equal(result.data._entities[1].payment, null);
    assert.equal(result.errors?.length, 1);
    assert.equal(result.errors[0].extensions?.code, 'FORBIDDEN');
    assert.deepEqual(result.errors[0].path, ['_entities', 1, 'payment']);
  });

  test('an admin sees every payment', async () => {
    const result = await stack.graphql(ENTITIES, { url, token: admin, variables: orderRefs([orders.bobs, orders.paid]) });
    assert.equal(result.errors, undefined);
    assert.deepEqual(
      result.data._entities.map((o: any) => o.payment.id),
      [payments.bobs, payments.paid],
    );
  });

  test('without a token the payment is UNAUTHENTICATED', async () => {
    const result = await stack.graphql(ENTITIES, { url, variables: orderRefs([orders.paid]) });
    assert.equal(result.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
    assert.equal(result.data?._entities[0].payment ?? null, null);
  });

  test('the migration created payment and refund with their constraints', async () => {
    const em = stack.services.payment!.runtime.db.fork();
    const tables = await em
      .getConnection()
      .execute<{ table_name: string }[]>(
        `select table_name from information_schema.tables where table_schema = 'public' and table_name in ('payment', 'refund') order by table_name`,
      );
    assert.deepEqual(
      tables.map((t) => t.table_name),
      ['payment', 'refund'],
    );
    // One payment per order.
    await assert.rejects(insertPayment(orders.paid, 'alice', 'PENDING', 1), /payment_order_id_unique/);
    // A refund belongs to an existing payment and gives back a positive amount.
    const refunds = stack.services.payment!.runtime.db.fork();
    refunds.create(Refund, { id: randomUUID(), payment: payments.paid, amount: 4499 });
    await refunds.flush();
    await assert.rejects(
      em.getConnection().execute(`insert into refund (id, payment_id, amount) values ('${randomUUID()}', '${randomUUID()}', 1)`),
      /refund_payment_id_fkey/,
    );
    await assert.rejects(
      em.getConnection().execute(`insert into refund (id, payment_id, amount) values ('${randomUUID()}', '${payments.paid}', 0)`),
      /refund_amount_check/,
    );
  });
});
