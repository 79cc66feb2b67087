/**
 * A real SMTP server for tests (`smtp-server`, the server half of Nodemailer's project), on a random
 * port of 127.0.0.1: it parses every accepted message (`mailparser`) and keeps it, and can answer
 * the next transactions with a temporary failure (451) or drop the connection, so a test can watch
 * a sender retry. No TLS and no authentication: it stands for a local relay or MailDev.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { waitFor } from './wait.ts';

/** A message as the server received it. */
export interface ReceivedMail {
  /** The envelope's sender and recipients (what the SMTP client said, not the headers). */
  readonly envelope: { readonly from: string | null; readonly to: readonly string[] };
  readonly messageId: string | null;
  readonly subject: string | null;
  readonly text: string | null;
  readonly html: string | null;
  /** Every header, lower-case names. */
  readonly headers: ReadonlyMap<string, unknown>;
}

/** How the server answers the transactions to come. */
export type SmtpFault = 'temporary-failure' | 'drop-connection';

/** A started test SMTP server; dispose it to stop it. */
export class TestSmtpServer implements AsyncDisposable {
  /** Every accepted message, in order. */
  readonly messages: ReceivedMail[] = [];
  /** Transactions refused so far (by {@link TestSmtpServer.failNext}). */
  refused = 0;
  readonly #faults: SmtpFault[] = [];
  readonly #server: SMTPServer;

  private constructor() {
    this.#server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        const fault = this.#faults.shift();
        if (fault) {
          this.refused++;
          stream.resume();
          stream.on('end', () => {
            if (fault === 'drop-connection') {
              // smtp-server keeps its connections in `connections`; the session id names ours.
              const connections = (this.#server as unknown as { connections: Set<{ id: string; _socket: { destroy(): void } }> }).connections;
              for (const connection of connections) if (connection.id === session.id) connection._socket.destroy();
              return;
            }
            callback(Object.assign(new Error('Try again later'), { responseCode: 451 }));
          });
          return;
        }
        simpleParser(stream)
          .then((mail) => {
            this.messages.push({
              envelope: {
                from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
                to: session.envelope.rcptTo.map((r) => r.address),
              },
              messageId: mail.messageId ?? null,
              subject: mail.subject ?? null,
              text: mail.text ?? null,
              html: typeof mail.html === 'string' ? mail.html : null,
              headers: mail.headers,
            });
            callback();
          })
          .catch((error: Error) => callback(error));
      },
    });
  }

  /** Starts a server on `port` of 127.0.0.1 (default: a free one). */
  static async start(port = 0): Promise<TestSmtpServer> {
    const smtp = new TestSmtpServer();
    smtp.#server.listen(port, '127.0.0.1');
    await once(smtp.#server.server, 'listening');
    return smtp;
  }

  /** The port it listens on. */
  get port(): number {
    return (this.#server.server.address() as AddressInfo).port;
  }

  /** `smtp://127.0.0.1:<port>`, for an SMTP client's configuration. */
  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Answers the next `count` transactions with `fault` instead of accepting them. */
  failNext(count: number, fault: SmtpFault = 'temporary-failure'): void {
    for (let i = 0; i < count; i++) this.#faults.push(fault);
  }

  /** Waits until at least `count` messages have arrived and returns them all. */
  async waitForMessages(count: number, timeoutMs = 15_000): Promise<ReceivedMail[]> {
    await waitFor(
      () => this.messages.length >= count,
      `${count} messages at the test SMTP server`,
      timeoutMs,
      () => this.messages.map((m) => m.subject),
    );
    return this.messages;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
