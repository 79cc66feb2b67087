/**
 * The notification service against real PostgreSQL, Kafka and a real SMTP server started here
 * (test/support/smtp-server.ts): events go in on their topics as their publishers would write them,
 * e-mail comes out over SMTP, and what became of each message is read back through GraphQL.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type AnyEventEnvelope, type RunningService, createEvent, eventsTopic } from '@swiftcart/platform';
import { startStack } from '../../../test/support/stack.ts';
import { TestSmtpServer } from '../../../test/support/smtp-server.ts';
import { handled, waitFor } from '../../../test/support/participants.ts';
import { freePort } from '../../../scripts/infra.ts';
import type { NotificationStatus } from '../src/entities.ts';
import { messageIdOf } from '../src/channels.ts';

/** Fast retries, so a test watches several attempts in well under a second. */
const FAST_ENV = {
  NOTIFICATION_POLL_MS: '50',
  NOTIFICATION_RETRY_BASE_MS: '50',
  NOTIFICATION_RETRY_MAX_MS: '200',
  NOTIFICATION_MAX_ATTEMPTS: '3',
  NOTIFICATION_PROFILE_WAIT_MS: '0',
  NOTIFICATION_SMTP_TIMEOUT_MS: '3000',
  NOTIFICATION_STOREFRONT_URL: 'https://shop.example/',
};

const LINES = [
  { sku: 'MUG-1', quantity: 2, unitPrice: { amount: 1299, currency: 'EUR' } },
  { sku: 'TEE-2', quantity: 1, unitPrice: { amount: 1899, currency: 'EUR' } },
];

/** Publishes `type` as its publisher would: on its topic, keyed by the aggregate. */
async function publish(
  service: RunningService,
  source: string,
  aggregateType: string,
  aggregateId: string,
  type: string,
  data: unknown,
  envelope: Partial<AnyEventEnvelope> = {},
): Promise<AnyEventEnvelope> {
  const event = { ...createEvent({ type, source, aggregateType, aggregateId, causationId: null, data }), ...envelope };
  await republish(service, event);
  return event;
}

/** Publishes an envelope again, as Kafka would redeliver it. */
async function republish(service: RunningService, event: AnyEventEnvelope): Promise<void> {
  await service.runtime.kafka.publish(eventsTopic(event.source), [
    { key: event.aggregateId, value: JSON.stringify(event), headers: { id: event.id, type: event.type } },
  ]);
}

interface Row {
  readonly id: string;
  readonly kind: string;
  readonly channel: string;
  readonly status: NotificationStatus;
  readonly status_reason: string | null;
  readonly attempts: number;
  readonly recipient: string | null;
}

/** A notification service over one SMTP URL, with helpers to feed it and read it. */
async function notificationStack(smtpUrl: string, env: Record<string, string> = {}) {
  const stack = await startStack({ services: ['notification'], env: { ...FAST_ENV, NOTIFICATION_SMTP_URL: smtpUrl, ...env } });
  const service = stack.services.notification!;
  const rows = (orderId: string) =>
    service.runtime.db
      .fork()
      .execute<Row[]>('select id, kind, channel, status, status_reason, attempts, recipient from notification where order_id = ? order by id', [orderId]);
  const customer = async (customerId: string, contact: { email?: string | null; phone?: string | null; email_enabled?: boolean; sms?: boolean } = {}) => {
    const event = await publish(service, 'customer', 'Customer', customerId, 'CustomerRegistered', {
      customerId,
      email: contact.email === undefined ? `${customerId}@example.com` : contact.email,
      name: 'Alice Example',
      phone: contact.phone ?? null,
      notificationPreferences: { email: contact.email_enabled ?? true, sms: contact.sms ?? false },
      addresses: [],
      version: 1,
    });
    await handled(service, event.id);
  };
  const order = (type: string, data: { readonly orderId: string } & Record<string, unknown>) => publish(service, 'order', 'Order', data.orderId, type, data);
  const placed = (orderId: string, customerId: string, envelope: Partial<AnyEventEnvelope> = {}) =>
    publish(
      service,
      'order',
      'Order',
      orderId,
      'OrderPlaced',
      { orderId, customerId, items: LINES, total: { amount: 4497, currency: 'EUR' }, deadlineAt: new Date(Date.now() + 60_000).toISOString() },
      envelope,
    );
  /** Waits until every message of the order has left PENDING/SENDING, and returns them. */
  const settled = async (orderId: string, count: number) => {
    let last: Row[] = [];
    await waitFor(
      async () => {
        last = await rows(orderId);
        return last.length >= count && last.every((r) => r.status !== 'PENDING' && r.status !== 'SENDING');
      },
      `${count} settled notifications of order ${orderId}`,
      15_000,
      () => last,
    );
    return last;
  };
  return { stack, service, rows, customer, order, placed, settled };
}

describe('notifications over a working SMTP server', () => {
  let smtp: TestSmtpServer;
  let n: Awaited<ReturnType<typeof notificationStack>>;

  before(async () => {
    smtp = await TestSmtpServer.start();
    n = await notificationStack(smtp.url);
  });
  after(async () => {
    await n?.stack.close();
    await smtp?.close();
  });

  test('an order placed and confirmed: two e-mails to the profile address, with subject, lines, total and link', async () => {
    const customerId = `alice-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    const before = smtp.messages.length;
    await n.placed(orderId, customerId);
    await n.order('OrderConfirmed', { orderId, customerId, items: LINES.map(({ sku, quantity }) => ({ sku, quantity })) });
    const rows = await n.settled(orderId, 2);
    assert.deepEqual(
      rows.map((r) => [r.kind, r.channel, r.status, r.recipient, r.attempts]),
      [
        ['ORDER_PLACED', 'EMAIL', 'SENT', `${customerId}@example.com`, 1],
        ['ORDER_CONFIRMED', 'EMAIL', 'SENT', `${customerId}@example.com`, 1],
      ],
    );
    const mails = smtp.messages.slice(before);
    const confirmation = mails.find((m) => m.messageId === messageIdOf(rows[1].id));
    assert.ok(confirmation, 'the confirmation arrived under its notification Message-ID');
    assert.deepEqual(confirmation.envelope.to, [`${customerId}@example.com`]);
    const ref = orderId.slice(0, 8).toUpperCase();
    assert.equal(confirmation.subject, `Your order ${ref} is confirmed`);
    assert.match(confirmation.text ?? '', /Hello Alice Example,/);
    assert.match(confirmation.text ?? '', /2 × MUG-1 at €12\.99 = €25\.98/);
    assert.match(confirmation.text ?? '', /1 × TEE-2 at €18\.99 = €18\.99/);
    assert.match(confirmation.text ?? '', /Total: €44\.97/);
    assert.ok(confirmation.html?.includes(`href="https://shop.example/#/orders/${orderId}"`), 'the HTML links to the order page');
    assert.ok(confirmation.html?.includes('<td>MUG-1</td>'));
  });

  test('a cancelled order: the e-mail gives the reason in words', async () => {
    const customerId = `carol-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    await n.order('OrderCancelled', { orderId, customerId, reason: 'payment declined: card expired', previousStatus: 'AWAITING_PAYMENT' });
    const rows = await n.settled(orderId, 2);
    const cancelled = rows.find((r) => r.kind === 'ORDER_CANCELLED');
    assert.equal(cancelled?.status, 'SENT');
    const mail = smtp.messages.find((m) => m.messageId === messageIdOf(cancelled!.id));
    assert.equal(mail?.subject, `Your order ${orderId.slice(0, 8).toUpperCase()} was cancelled`);
    assert.match(mail?.text ?? '', /Reason: payment declined: card expired\./);
  });

  test('a redelivered event sends nothing twice', async () => {
    const customerId = `dave-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    const placed = await n.placed(orderId, customerId);
    await n.settled(orderId, 1);
    await republish(n.service, placed);
    await republish(n.service, placed);
    // A later event of the same order on the same partition: once it is handled, so are the copies.
    const confirmed = await n.order('OrderConfirmed', { orderId, customerId, items: [{ sku: 'MUG-1', quantity: 2 }] });
    await handled(n.service, confirmed.id);
    const rows = await n.settled(orderId, 2);
    assert.deepEqual(
      rows.map((r) => r.kind),
      ['ORDER_PLACED', 'ORDER_CONFIRMED'],
    );
    const placedMails = smtp.messages.filter((m) => m.messageId === messageIdOf(rows[0].id));
    assert.equal(placedMails.length, 1, 'one e-mail for the placed order, however often the event came');
  });

  test('shipped, delivered and refunded: the messages carry carrier and tracking, and the amount', async () => {
    const customerId = `erin-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId, { phone: '+4915112345678', sms: true });
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    const shipmentId = randomUUID();
    await publish(n.service, 'shipment', 'Order', orderId, 'ShipmentDispatched', { orderId, shipmentId, carrier: 'DHL', trackingNumber: 'JD014600003SE' });
    await publish(n.service, 'shipment', 'Order', orderId, 'ShipmentDelivered', { orderId, shipmentId });
    await publish(n.service, 'payment', 'Order', orderId, 'PaymentRefunded', {
      orderId,
      paymentId: randomUUID(),
      refundId: randomUUID(),
      amount: { amount: 1899, currency: 'EUR' },
    });
    // Each event by e-mail and by SMS: the customer asked for both.
    const rows = await n.settled(orderId, 8);
    assert.deepEqual(
      rows.map((r) => `${r.kind}/${r.channel}/${r.status}`).sort(),
      ['ORDER_DELIVERED', 'ORDER_PLACED', 'ORDER_SHIPPED', 'REFUND_ISSUED'].flatMap((k) => [`${k}/EMAIL/SENT`, `${k}/SMS/SENT`]).sort(),
    );
    const shipped = rows.find((r) => r.kind === 'ORDER_SHIPPED' && r.channel === 'EMAIL')!;
    assert.match(smtp.messages.find((m) => m.messageId === messageIdOf(shipped.id))?.text ?? '', /left with DHL, tracking number JD014600003SE/);
    const refund = rows.find((r) => r.kind === 'REFUND_ISSUED' && r.channel === 'EMAIL')!;
    assert.match(smtp.messages.find((m) => m.messageId === messageIdOf(refund.id))?.text ?? '', /We refunded €18\.99/);
    // The development SMS provider keeps what it "sent".
    const sms = await n.service.runtime.db
      .fork()
      .execute<{ recipient: string; body: string }[]>('select recipient, body from sms_message where id in (?)', [
        rows.filter((r) => r.channel === 'SMS').map((r) => r.id),
      ]);
    assert.equal(sms.length, 4);
    assert.ok(sms.every((s) => s.recipient === '+4915112345678'));
    assert.ok(sms.some((s) => /tracking number JD014600003SE/.test(s.body)));
  });

  test('no profile, no e-mail address, or e-mail turned off: SKIPPED with the reason, nothing sent', async () => {
    const cases = [
      { customerId: `ghost-${randomUUID().slice(0, 8)}`, profile: false, reason: 'the customer has no profile' },
      { customerId: `nomail-${randomUUID().slice(0, 8)}`, profile: true, contact: { email: null }, reason: 'the profile has no e-mail address' },
      { customerId: `quiet-${randomUUID().slice(0, 8)}`, profile: true, contact: { email_enabled: false }, reason: 'the customer turned e-mail off' },
    ];
    const sent = smtp.messages.length;
    for (const c of cases) {
      if (c.profile) await n.customer(c.customerId, c.contact);
      const orderId = randomUUID();
      await n.placed(orderId, c.customerId);
      const [row] = await n.settled(orderId, 1);
      assert.equal(row.status, 'SKIPPED', c.customerId);
      assert.equal(row.status_reason, c.reason);
      assert.equal(row.attempts, 0, 'a skipped message was never tried');
    }
    assert.equal(smtp.messages.length, sent, 'nothing reached the SMTP server');
  });

  test('an event older than NOTIFICATION_MAX_EVENT_AGE_MS (a new deployment reading old events) is recorded SKIPPED, not sent', async () => {
    const customerId = `old-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    const sent = smtp.messages.length;
    await n.placed(orderId, customerId, { occurredAt: new Date(Date.now() - 2 * 86_400_000).toISOString() });
    const [row] = await n.settled(orderId, 1);
    assert.deepEqual([row.kind, row.status, row.attempts], ['ORDER_PLACED', 'SKIPPED', 0]);
    assert.match(row.status_reason ?? '', /older than NOTIFICATION_MAX_EVENT_AGE_MS/);
    // A fresh event of the same order is sent as usual.
    await n.order('OrderConfirmed', { orderId, customerId, items: [{ sku: 'MUG-1', quantity: 2 }] });
    const rows = await n.settled(orderId, 2);
    assert.equal(rows[1].status, 'SENT');
    assert.equal(smtp.messages.length, sent + 1);
  });

  test('a shipment event read before its order’s OrderPlaced waits for it, then goes to the order’s customer', async () => {
    const customerId = `lena-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    await publish(n.service, 'shipment', 'Order', orderId, 'ShipmentDispatched', {
      orderId,
      shipmentId: randomUUID(),
      carrier: 'UPS',
      trackingNumber: '1Z999AA1',
    });
    // Written, with no customer yet, and waiting without counting a try: the order is unknown so far.
    await waitFor(async () => {
      const rows = await n.service.runtime.db
        .fork()
        .execute<{ status: string; customer_id: string | null; attempts: number }[]>(
          'select status, customer_id, attempts from notification where order_id = ?',
          [orderId],
        );
      return rows.length === 1 && rows[0].status === 'PENDING' && rows[0].customer_id === null && rows[0].attempts === 0;
    }, 'the shipped message written and waiting for its order');
    // Before OrderPlaced, the message is nobody's but an admin's; the customer sees none (not FORBIDDEN).
    const query = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Order { notifications { kind status } } } }`;
    const variables = { r: [{ __typename: 'Order', id: orderId }] };
    const early = await n.stack.graphql(query, { variables, token: await n.stack.token(customerId, ['customer']) });
    assert.deepEqual(early.data?._entities?.[0]?.notifications, [], JSON.stringify(early));

    await n.placed(orderId, customerId);
    const rows = await n.settled(orderId, 2);
    const shipped = rows.find((r) => r.kind === 'ORDER_SHIPPED')!;
    assert.deepEqual([shipped.status, shipped.recipient, shipped.attempts], ['SENT', `${customerId}@example.com`, 1]);
    const late = await n.stack.graphql(query, { variables, token: await n.stack.token(customerId, ['customer']) });
    assert.equal(late.data._entities[0].notifications.length, 2);
  });

  test('temporary refusals (451) are retried with backoff until accepted; after the last attempt the message is FAILED', async () => {
    const customerId = `fred-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    smtp.failNext(2, 'temporary-failure');
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    const [delivered] = await n.settled(orderId, 1);
    assert.equal(delivered.status, 'SENT');
    assert.equal(delivered.attempts, 3, 'two refusals, then the third try went through');
    assert.equal(smtp.messages.filter((m) => m.messageId === messageIdOf(delivered.id)).length, 1);

    smtp.failNext(3, 'temporary-failure');
    const doomed = randomUUID();
    await n.placed(doomed, customerId);
    const [dead] = await n.settled(doomed, 1);
    assert.equal(dead.status, 'FAILED');
    assert.equal(dead.attempts, 3);
    assert.match(dead.status_reason ?? '', /^gave up after 3 attempts: .*451/);
  });

  test('a connection dropped after the message was sent: UNCERTAIN, never sent again', async () => {
    const customerId = `gina-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    smtp.failNext(1, 'drop-connection');
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    const [row] = await n.settled(orderId, 1);
    assert.equal(row.status, 'UNCERTAIN');
    assert.equal(row.attempts, 1);
    // Nothing brings it back: the sender goes on (the next order's message is sent) and leaves it as it is.
    const next = randomUUID();
    await n.placed(next, customerId);
    assert.equal((await n.settled(next, 1))[0].status, 'SENT');
    const again = await n.rows(orderId);
    assert.deepEqual([again[0].status, again[0].attempts], ['UNCERTAIN', 1]);
    assert.equal(
      smtp.messages.filter((m) => m.messageId === messageIdOf(row.id)).length,
      0,
      'the server never kept it (it dropped the connection), and the sender never retried',
    );
  });

  test('a message a stopped sender left SENDING becomes UNCERTAIN when its lease runs out, and is not sent', async () => {
    const customerId = `hank-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    const id = randomUUID();
    const db = n.service.runtime.db.fork();
    // As a sender that died between claiming and recording would leave it.
    await db.execute(
      `insert into notification (id, event_id, channel, kind, order_id, customer_id, subject, status, attempts, lease_until)
       values (?, ?, 'EMAIL', 'ORDER_PLACED', ?, ?, 'a subject', 'SENDING', 1, now() - interval '1 second')`,
      [id, randomUUID(), orderId, customerId],
    );
    const [row] = await n.settled(orderId, 1);
    assert.equal(row.status, 'UNCERTAIN');
    assert.match(row.status_reason ?? '', /stopped while handing it over/);
    assert.equal(smtp.messages.filter((m) => m.messageId === messageIdOf(id)).length, 0);
  });

  test('myNotifications pages the caller’s messages newest first; another customer sees none of them', async () => {
    const customerId = `ivy-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    await n.order('OrderConfirmed', { orderId, customerId, items: [{ sku: 'MUG-1', quantity: 2 }] });
    await n.settled(orderId, 2);
    const token = await n.stack.token(customerId, ['customer']);
    const query = `query ($first: Int, $after: String) { myNotifications(first: $first, after: $after) {
      totalCount pageInfo { hasNextPage endCursor } edges { node { id kind channel status subject sentAt recipient attempts order { id } } } } }`;
    const first = await n.stack.graphql(query, { variables: { first: 1 }, token });
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    const page1 = first.data.myNotifications;
    assert.equal(page1.totalCount, 2);
    assert.equal(page1.pageInfo.hasNextPage, true);
    assert.equal(page1.edges[0].node.kind, 'ORDER_CONFIRMED');
    assert.equal(page1.edges[0].node.status, 'SENT');
    assert.ok(page1.edges[0].node.sentAt);
    assert.deepEqual(page1.edges[0].node.order, { id: orderId });
    const second = await n.stack.graphql(query, { variables: { first: 1, after: page1.pageInfo.endCursor }, token });
    assert.equal(second.data.myNotifications.edges[0].node.kind, 'ORDER_PLACED');
    assert.equal(second.data.myNotifications.pageInfo.hasNextPage, false);

    const other = await n.stack.graphql(query, { variables: {}, token: await n.stack.token('someone-else', ['customer']) });
    assert.equal(other.data.myNotifications.totalCount, 0);
    const anonymous = await n.stack.graphql(query, { variables: {}, token: null });
    assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
    const badCursor = await n.stack.graphql(query, { variables: { after: 'nope' }, token });
    assert.equal(badCursor.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    const tooMany = await n.stack.graphql(query, { variables: { first: 1000 }, token });
    assert.equal(tooMany.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
  });

  test('Order.notifications (a federated reference) lists the order’s messages to its customer and admins only', async () => {
    const customerId = `jack-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    await n.settled(orderId, 1);
    const query = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id notifications { kind status channel } } } }`;
    const variables = { r: [{ __typename: 'Order', id: orderId }] };
    const own = await n.stack.graphql(query, { variables, token: await n.stack.token(customerId, ['customer']) });
    assert.equal(own.errors, undefined, JSON.stringify(own.errors));
    assert.deepEqual(own.data._entities[0].notifications, [{ kind: 'ORDER_PLACED', status: 'SENT', channel: 'EMAIL' }]);
    const admin = await n.stack.graphql(query, { variables, token: await n.stack.token('root', ['admin']) });
    assert.equal(admin.data._entities[0].notifications.length, 1);
    const stranger = await n.stack.graphql(query, { variables, token: await n.stack.token('mallory', ['customer']) });
    assert.equal(stranger.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  });
});

describe('notifications while the SMTP server is down', () => {
  test('a refused connection is retried, and the message is delivered once the server is up', async () => {
    const port = await freePort();
    // Enough attempts that the server's start always falls between two of them.
    await using n = await notificationStack(`smtp://127.0.0.1:${port}`, { NOTIFICATION_MAX_ATTEMPTS: '20' }).then((s) =>
      Object.assign(s, { [Symbol.asyncDispose]: () => s.stack.close() }),
    );
    const customerId = `kim-${randomUUID().slice(0, 8)}`;
    await n.customer(customerId);
    const orderId = randomUUID();
    await n.placed(orderId, customerId);
    // Refused at least once: back to PENDING with the reason, and a try counted.
    await waitFor(async () => {
      const [row] = await n.rows(orderId);
      return row?.status === 'PENDING' && row.attempts >= 1 && /ECONNREFUSED/.test(row.status_reason ?? '');
    }, 'a refused try recorded');
    await using smtp = await TestSmtpServer.start(port);
    const [row] = await n.settled(orderId, 1);
    assert.equal(row.status, 'SENT');
    assert.ok(row.attempts >= 2, `retried (${row.attempts} attempts)`);
    const mails = await smtp.waitForMessages(1);
    assert.equal(mails.filter((m) => m.messageId === messageIdOf(row.id)).length, 1);
  });
});
