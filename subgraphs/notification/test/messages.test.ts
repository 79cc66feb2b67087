/** The templates and the sorting of SMTP failures: pure, no server. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classifySmtpError, messageIdOf } from '../src/channels.ts';
import { type MessageInput, formatMoney, orderReference, renderEmail, renderSms, subjectOf } from '../src/messages.ts';
import { NOTIFICATION_KINDS } from '../src/entities.ts';

const ORDER_ID = '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

function input(overrides: Partial<MessageInput> = {}): MessageInput {
  return {
    kind: 'ORDER_CONFIRMED',
    order: {
      orderId: ORDER_ID,
      customerId: 'alice',
      total: { amount: 4497, currency: 'EUR' },
      items: [
        { sku: 'MUG-1', quantity: 2, unitPrice: { amount: 1299, currency: 'EUR' } },
        { sku: 'TEE-<b>', quantity: 1, unitPrice: { amount: 1899, currency: 'EUR' } },
      ],
      placedAt: new Date('2026-12-07T10:00:00Z'),
    },
    details: {},
    customerName: 'Alice',
    orderUrl: `http://localhost:5173/#/orders/${ORDER_ID}`,
    ...overrides,
  };
}

describe('notification messages', () => {
  test('money is written in major units with the currency, by its own number of decimals', () => {
    assert.equal(formatMoney({ amount: 1999, currency: 'EUR' }), '€19.99');
    assert.equal(formatMoney({ amount: 1999, currency: 'JPY' }), 'JP¥1,999');
    assert.equal(formatMoney({ amount: 5, currency: 'USD' }), 'US$0.05');
  });

  test('every kind has its own subject naming the order', () => {
    const subjects = NOTIFICATION_KINDS.map((kind) => subjectOf(kind, ORDER_ID));
    assert.equal(new Set(subjects).size, NOTIFICATION_KINDS.length);
    for (const subject of subjects) assert.match(subject, new RegExp(orderReference(ORDER_ID)));
    assert.equal(orderReference(ORDER_ID), '0193A1B2');
    assert.equal(subjectOf('ORDER_CONFIRMED', ORDER_ID), 'Your order 0193A1B2 is confirmed');
  });

  test('the e-mail has the lines, the total and the link, in text and in HTML (escaped)', () => {
    const email = renderEmail(input());
    assert.equal(email.subject, 'Your order 0193A1B2 is confirmed');
    assert.match(email.text, /^Hello Alice,/);
    assert.match(email.text, /2 × MUG-1 at €12\.99 = €25\.98/);
    assert.match(email.text, /1 × TEE-<b> at €18\.99 = €18\.99/);
    assert.match(email.text, /Total: €44\.97/);
    assert.ok(email.text.includes(`See your order: http://localhost:5173/#/orders/${ORDER_ID}`));
    assert.ok(email.html.includes('<td>TEE-&lt;b&gt;</td>'), 'a sku is escaped in HTML');
    assert.ok(!email.html.includes('TEE-<b>'));
    assert.ok(email.html.includes('€44.97'));
    assert.ok(email.html.includes(`<a href="http://localhost:5173/#/orders/${ORDER_ID}">`));
  });

  test('a cancellation gives the reason, a shipment the carrier and tracking number, a refund the amount', () => {
    const cancelled = renderEmail(input({ kind: 'ORDER_CANCELLED', details: { reason: 'payment declined: insufficient funds' } }));
    assert.match(cancelled.text, /Reason: payment declined: insufficient funds\./);
    const shipped = renderEmail(input({ kind: 'ORDER_SHIPPED', details: { carrier: 'DHL', trackingNumber: 'JD0146' } }));
    assert.match(shipped.text, /left with DHL, tracking number JD0146/);
    const refund = renderEmail(input({ kind: 'REFUND_ISSUED', details: { amount: { amount: 4497, currency: 'EUR' } } }));
    assert.match(refund.text, /We refunded €44\.97/);
    const reason = renderEmail(input({ kind: 'ORDER_REJECTED', details: { reason: '<script>' } }));
    assert.ok(reason.html.includes('Reason: &lt;script&gt;'));
  });

  test('without a name the greeting is plain; the SMS is one line with the link', () => {
    assert.match(renderEmail(input({ customerName: null })).text, /^Hello,\n/);
    const sms = renderSms(input({ kind: 'ORDER_SHIPPED', details: { carrier: 'UPS', trackingNumber: '1Z999' } }));
    assert.equal(sms, `SwiftCart: Your order 0193A1B2 left with UPS, tracking number 1Z999. http://localhost:5173/#/orders/${ORDER_ID}`);
  });

  test('the Message-ID is stable per notification', () => {
    assert.equal(messageIdOf('abc'), '<notification-abc@swiftcart.dev>');
  });
});

describe('SMTP failures', () => {
  test('the server said later (4xx): retry; never (5xx): failed', () => {
    assert.equal(classifySmtpError({ message: 'Message failed: 451 Try again later', code: 'EMESSAGE', command: 'DATA', responseCode: 451 }).kind, 'retry');
    assert.equal(classifySmtpError({ message: '421 busy', code: 'EPROTOCOL', command: 'CONN', responseCode: 421 }).kind, 'retry');
    assert.equal(classifySmtpError({ message: '550 no such user', code: 'EENVELOPE', command: 'RCPT TO', responseCode: 550 }).kind, 'failed');
  });

  test('a refused connection or an unknown host: retry (nothing was sent)', () => {
    assert.equal(classifySmtpError({ message: 'connect ECONNREFUSED 127.0.0.1:1', code: 'ESOCKET', command: 'CONN', syscall: 'connect' }).kind, 'retry');
    assert.equal(classifySmtpError({ message: 'getaddrinfo ENOTFOUND mail', code: 'EDNS', command: 'CONN' }).kind, 'retry');
    assert.equal(classifySmtpError({ message: 'Greeting never received', code: 'ETIMEDOUT', command: 'CONN' }).kind, 'retry');
    assert.equal(classifySmtpError({ message: 'self-signed certificate', code: 'ESOCKET', command: 'CONN' }).kind, 'retry');
    assert.equal(classifySmtpError({ message: 'Error initiating TLS', code: 'ETLS', command: 'STARTTLS' }).kind, 'retry');
    assert.equal(classifySmtpError({ message: 'Invalid login: 535', code: 'EAUTH', command: 'AUTH PLAIN' }).kind, 'retry');
  });

  test('a connection that broke without an answer may have delivered: uncertain', () => {
    assert.equal(classifySmtpError({ message: 'Connection closed unexpectedly', code: 'ECONNECTION', command: 'CONN' }).kind, 'uncertain');
    assert.equal(classifySmtpError({ message: 'Timeout', code: 'ETIMEDOUT', command: 'DATA' }).kind, 'uncertain');
    assert.equal(classifySmtpError({ message: 'read ECONNRESET', code: 'ESOCKET', command: 'CONN' }).kind, 'uncertain');
    assert.equal(classifySmtpError(new Error('something else')).kind, 'uncertain');
  });
});
