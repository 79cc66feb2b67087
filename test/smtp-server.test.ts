/**
 * The test SMTP server (test/support/smtp-server.ts) that the notification service's tests will
 * send to, driven by Nodemailer over real SMTP: what it keeps of a message, and the faults it
 * plays so that a sender's retries can be watched.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer, { type Transporter } from 'nodemailer';
import { TestSmtpServer } from './support/smtp-server.ts';

describe('the test SMTP server', () => {
  let smtp: TestSmtpServer;
  let transport: Transporter;
  const mail = (subject: string) => ({
    from: 'SwiftCart <orders@swiftcart.test>',
    to: 'ada@example.com',
    subject,
    text: `plain ${subject}`,
    html: `<p>html ${subject}</p>`,
  });

  before(async () => {
    smtp = await TestSmtpServer.start();
    transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.port, secure: false, ignoreTLS: true, pool: false });
  });
  after(async () => {
    transport?.close();
    await smtp?.close();
  });

  it('keeps what it accepts: envelope, subject, text, HTML and Message-ID', async () => {
    const sent = await transport.sendMail(mail('Your order is confirmed'));
    const [received] = await smtp.waitForMessages(1);
    assert.deepEqual(received.envelope, { from: 'orders@swiftcart.test', to: ['ada@example.com'] });
    assert.equal(received.subject, 'Your order is confirmed');
    assert.equal(received.text?.trim(), 'plain Your order is confirmed');
    assert.equal(received.html, '<p>html Your order is confirmed</p>');
    assert.equal(received.messageId, sent.messageId);
  });

  it('answers 451 to the next transactions when told, then accepts again', async () => {
    smtp.failNext(1);
    await assert.rejects(transport.sendMail(mail('refused')), (error: { responseCode?: number }) => error.responseCode === 451);
    await transport.sendMail(mail('accepted'));
    const messages = await smtp.waitForMessages(2);
    assert.deepEqual(
      messages.map((m) => m.subject),
      ['Your order is confirmed', 'accepted'],
    );
    assert.equal(smtp.refused, 1);
  });

  it('can drop the connection after the data, so the sender does not know whether it was taken', async () => {
    smtp.failNext(1, 'drop-connection');
    await assert.rejects(transport.sendMail(mail('dropped')));
    assert.equal(smtp.messages.length, 2, 'nothing kept');
  });
});
