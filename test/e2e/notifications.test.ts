/**
 * Notifications end to end: a customer with an e-mail address orders through the gateway, the saga
 * runs, and the notification service's e-mails arrive at a real SMTP server started here; the same
 * messages are read back as `Order.notifications` and `myNotifications`, through federation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestStack } from '../support/stack.ts';
import { TestSmtpServer, type ReceivedMail } from '../support/smtp-server.ts';
import { SAGA_SERVICES, type SagaSystem, placeOrder, startSeededSaga, waitFor, waitForStatus } from '../support/saga.ts';

const SKU = 'NOTE-MUG';
const UPDATE = `mutation ($input: UpdateProfileInput!) { updateMyProfile(input: $input) { id email } }`;
const ORDER_NOTIFICATIONS = `query ($id: ID!) { order(id: $id) { id status notifications { kind channel status subject recipient sentAt order { id status } } } }`;
const MY_NOTIFICATIONS = `query { myNotifications(first: 10) { totalCount edges { node { kind status order { id } } } } }`;

describe('notifications through the saga', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let smtp: TestSmtpServer;
  let alice: string;

  /** The e-mail with `subject` to `to`, once it has arrived. */
  async function mailTo(to: string, subject: string): Promise<ReceivedMail> {
    let found: ReceivedMail | undefined;
    await waitFor(
      () => (found = smtp.messages.find((m) => m.subject === subject && m.envelope.to.includes(to))) !== undefined,
      `"${subject}" to ${to}`,
      20_000,
      () => smtp.messages.map((m) => `${m.envelope.to} ${m.subject}`),
    );
    return found!;
  }

  before(async () => {
    smtp = await TestSmtpServer.start();
    ({ stack, system } = await startSeededSaga(
      [{ sku: SKU, onHand: 20, priceAmount: 1250 }],
      {
        NOTIFICATION_SMTP_URL: smtp.url,
        NOTIFICATION_POLL_MS: '50',
        NOTIFICATION_STOREFRONT_URL: 'http://shop.test',
      },
      [...SAGA_SERVICES, 'customer', 'notification'],
    ));
    alice = await stack.token('note-alice', ['customer']);
    const profile = await stack.graphql(UPDATE, { token: alice, variables: { input: { email: 'alice@example.com', name: 'Alice' } } });
    assert.equal(profile.errors, undefined, JSON.stringify(profile.errors));
    // The notification service learns the address from CustomerUpdated.
    await waitFor(async () => {
      const rows = await system.em('notification').execute(`select 1 from customer_contact where customer_id = 'note-alice' and email = 'alice@example.com'`);
      return rows.length === 1;
    }, "the notification service's copy of alice's address");
  });
  after(async () => {
    await stack?.close();
    await smtp?.close();
  });

  it('a confirmed order: the confirmation e-mail goes to the profile address with the order lines, and the order lists its messages', async () => {
    const order = await placeOrder(system, alice, [{ sku: SKU, quantity: 2 }], 'tok_visa');
    await waitForStatus(system, alice, order.id, ['CONFIRMED']);
    const ref = order.id.slice(0, 8).toUpperCase();
    const mail = await mailTo('alice@example.com', `Your order ${ref} is confirmed`);
    assert.match(mail.text ?? '', /Hello Alice,/);
    assert.match(mail.text ?? '', /2 × NOTE-MUG at €12\.50 = €25\.00/);
    assert.match(mail.text ?? '', /Total: €25\.00/);
    assert.ok(mail.text?.includes(`http://shop.test/#/orders/${order.id}`));
    await mailTo('alice@example.com', `We received your order ${ref}`);

    let listed: any;
    await waitFor(async () => {
      const result = await stack.graphql(ORDER_NOTIFICATIONS, { token: alice, variables: { id: order.id } });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      listed = result.data.order.notifications;
      return listed.length === 2 && listed.every((n: any) => n.status === 'SENT');
    }, 'both messages SENT on the order');
    assert.deepEqual(
      listed.map((n: any) => [n.kind, n.channel, n.recipient, n.order]),
      [
        ['ORDER_PLACED', 'EMAIL', 'alice@example.com', { id: order.id, status: 'CONFIRMED' }],
        ['ORDER_CONFIRMED', 'EMAIL', 'alice@example.com', { id: order.id, status: 'CONFIRMED' }],
      ],
    );
    assert.ok(listed.every((n: any) => typeof n.sentAt === 'string'));
    const mine = await stack.graphql(MY_NOTIFICATIONS, { token: alice });
    assert.equal(mine.errors, undefined, JSON.stringify(mine.errors));
    assert.ok(mine.data.myNotifications.edges.some((e: any) => e.node.kind === 'ORDER_CONFIRMED' && e.node.order.id === order.id));
  });

  it('a declined payment cancels the order, and the e-mail says why in the words of the order’s timeline', async () => {
    const order = await placeOrder(system, alice, [{ sku: SKU, quantity: 1 }], 'tok_decline');
    const cancelled = await waitForStatus(system, alice, order.id, ['CANCELLED']);
    // The step into CANCELLED: notes such as "stock released" may already follow it, with the status unchanged.
    const reason = cancelled.timeline.find((step: { status: string }) => step.status === 'CANCELLED').reason as string;
    assert.ok(reason, 'the timeline gives a reason');
    const mail = await mailTo('alice@example.com', `Your order ${order.id.slice(0, 8).toUpperCase()} was cancelled`);
    assert.ok((mail.text ?? '').includes(`Reason: ${reason.replace(/[.\s]+$/u, '')}.`), `${mail.text} should give "${reason}"`);
  });
});
