/**
 * How a message leaves: e-mail over SMTP (Nodemailer), SMS through a provider. A channel never
 * throws: it says what became of the message, and the sender (sender.ts) records that. The line
 * between "retry" and "uncertain" is ADR 0022's: only what certainly did not reach the server is
 * tried again.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { Database, Logger } from '@swiftcart/platform';

/** A message ready to go; `id` is the notification's, and makes the e-mail's Message-ID. */
export interface OutgoingMessage {
  readonly id: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** What became of one try. */
export type SendOutcome =
  /** The server or provider took it (SMTP 250). */
  | { readonly kind: 'accepted'; readonly response: string }
  /** It certainly did not arrive, and may later: a 4xx answer, a refused connection. */
  | { readonly kind: 'retry'; readonly reason: string }
  /** It certainly did not arrive, and never will as it is: a 5xx answer, an address refused. */
  | { readonly kind: 'failed'; readonly reason: string }
  /** It may have arrived: the connection broke while the message was on its way. Never resent. */
  | { readonly kind: 'uncertain'; readonly reason: string };

/** A way to reach customers. */
export interface Channel extends AsyncDisposable {
  send(message: OutgoingMessage): Promise<SendOutcome>;
}

/** The Message-ID of a notification's e-mail: stable, so a receiver that drops duplicates drops an operator's resend. */
export function messageIdOf(notificationId: string): string {
  return `<notification-${notificationId}@swiftcart.dev>`;
}

/** The parts of a Nodemailer error that tell where the transaction broke. */
interface SmtpFailure {
  readonly message?: string;
  readonly code?: string;
  readonly command?: string;
  readonly responseCode?: number;
  readonly syscall?: string;
}

/**
 * Sorts a failed SMTP transaction. The server's own answer decides when there is one (4xx: later,
 * 5xx: never). Without one, only a failure to connect or to be greeted is certainly harmless;
 * a connection that broke later may have broken after the server took the message, so it is
 * `uncertain`.
 */
export function classifySmtpError(error: unknown): SendOutcome {
  const failure = (error ?? {}) as SmtpFailure;
  const reason = (failure.message ?? String(error)).slice(0, 500);
  if (typeof failure.responseCode === 'number') {
    if (failure.responseCode >= 400 && failure.responseCode < 500) return { kind: 'retry', reason };
    if (failure.responseCode >= 500) return { kind: 'failed', reason };
  }
  if (failure.syscall === 'connect' || failure.syscall === 'getaddrinfo' || failure.code === 'EDNS') return { kind: 'retry', reason };
  // TLS and authentication come before any envelope: a bad certificate, a failed STARTTLS or a
  // refused login leaves nothing at the server (and may be mended by the operator meanwhile).
  if (failure.code === 'ETLS' || failure.code === 'EAUTH' || failure.code === 'ENOAUTH') return { kind: 'retry', reason };
  if (failure.code === 'ESOCKET' && /certificate|self[- ]signed|ssl|tls/i.test(reason)) return { kind: 'retry', reason };
  // A timeout while connecting or waiting for the greeting: nothing of the message was sent.
  if (failure.code === 'ETIMEDOUT' && failure.command === 'CONN' && /greeting|connection timeout/i.test(reason)) return { kind: 'retry', reason };
  // Refused before any byte of the message left: an invalid address, an oversized message.
  if (failure.code === 'EENVELOPE' || failure.code === 'EMESSAGE') return { kind: 'failed', reason };
  return { kind: 'uncertain', reason };
}

/** E-mail over SMTP: one connection per message, so a connection the server closed while idle can never be mistaken for a broken delivery. */
export class SmtpEmailChannel implements Channel {
  readonly #transport: Transporter;
  readonly #from: string;

  constructor(options: { readonly url: string; readonly from: string; readonly timeoutMs: number }) {
    const url = new URL(options.url);
    this.#transport = nodemailer.createTransport({
      host: url.hostname,
      port: Number(url.port || (url.protocol === 'smtps:' ? 465 : 25)),
      secure: url.protocol === 'smtps:',
      auth: url.username ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      socketTimeout: options.timeoutMs,
    });
    this.#from = options.from;
  }

  async send(message: OutgoingMessage): Promise<SendOutcome> {
    try {
      const info = await this.#transport.sendMail({
        from: this.#from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
        messageId: messageIdOf(message.id),
      });
      return { kind: 'accepted', response: String(info.response ?? '250') };
    } catch (error) {
      return classifySmtpError(error);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#transport.close();
  }
}

/** Sends SMS; a real provider's adapter implements this and says which failures are worth a retry. */
export type SmsProvider = Channel;

/**
 * The development SMS provider: there is no SMS sink here, so each message is written to the
 * `sms_message` table and the log, where a developer (and a test) can read it.
 */
export class DevelopmentSmsProvider implements SmsProvider {
  readonly #db: Database;
  readonly #log: Logger;

  constructor(db: Database, log: Logger) {
    this.#db = db;
    this.#log = log;
  }

  async send(message: OutgoingMessage): Promise<SendOutcome> {
    try {
      // Keyed by the notification: an operator's resend of an UNCERTAIN one stores it once.
      await this.#db
        .fork()
        .execute('insert into sms_message (id, recipient, body) values (?, ?, ?) on conflict (id) do nothing', [message.id, message.to, message.text]);
    } catch (error) {
      // The insert either committed or did not: a lost answer is the only doubt, and Postgres gives one.
      return { kind: 'retry', reason: (error as Error).message.slice(0, 500) };
    }
    this.#log.info({ notificationId: message.id, to: message.to, text: message.text }, 'SMS (development provider: not sent anywhere)');
    return { kind: 'accepted', response: 'stored by the development SMS provider' };
  }

  async [Symbol.asyncDispose](): Promise<void> {}
}
