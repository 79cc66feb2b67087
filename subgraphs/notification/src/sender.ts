/**
 * The sender (ADR 0022): takes due messages with `for update skip locked`, marks them SENDING under
 * a lease and commits, and only then hands each to its channel; what the channel says becomes the
 * row's status. A row still SENDING when its lease has run out belonged to a sender that stopped
 * mid-send: it may have arrived, so it becomes UNCERTAIN and is never sent again on its own (at
 * most once). Several senders (replicas, worker processes) share the queue safely.
 */
import { type Database, type Logger, exponentialBackoff, inTransaction } from '@swiftcart/platform';
import type { Channel, OutgoingMessage, SendOutcome } from './channels.ts';
import type { NotificationChannel, NotificationDetails, NotificationKind } from './entities.ts';
import { type MessageInput, type OrderSummary, renderEmail, renderSms } from './messages.ts';
import type { NotificationSettings } from './settings.ts';

/**
 * Messages claimed per round, all sent at once; a full round is followed by the next one at once.
 * Small, so that every claimed message is sent right after its claim, well inside its lease.
 */
export const SEND_BATCH_SIZE = 4;
/**
 * SMTP steps of one send, each allowed `smtpTimeoutMs`: connect, greeting, EHLO, MAIL FROM, RCPT TO,
 * DATA, the message, and one spare (a STARTTLS or AUTH exchange).
 */
const SMTP_STEPS = 8;
/**
 * How long a message may wait for its order's OrderPlaced (a shipment or payment event can be read
 * before it: they come on other topics) before it is FAILED.
 */
export const ORDER_WAIT_MS = 10 * 60_000;
/** The longest wait between two looks for a message's order. */
const MAX_ORDER_RECHECK_MS = 60_000;

/** A claimed row, as the claim returns it. */
interface ClaimedRow {
  readonly id: string;
  readonly channel: NotificationChannel;
  readonly kind: NotificationKind;
  readonly order_id: string;
  readonly customer_id: string | null;
  readonly details: NotificationDetails;
  readonly attempts: number;
  /** How long ago the event was handled, by the database's clock (the one every lease uses). */
  readonly age_ms: number;
}

interface SummaryRow {
  readonly order_id: string;
  readonly customer_id: string;
  readonly currency: string;
  readonly total_amount: number;
  readonly items: OrderSummary['items'];
  readonly placed_at: Date;
}

interface ContactRow {
  readonly email: string | null;
  readonly name: string | null;
  readonly phone: string | null;
  readonly email_enabled: boolean;
  readonly sms_enabled: boolean;
}

/** What a sender needs. */
export interface SenderOptions {
  readonly db: Database;
  readonly log: Logger;
  readonly settings: NotificationSettings;
  readonly channels: Readonly<Record<NotificationChannel, Channel>>;
}

/** What one pass did, for tests and logs. */
export interface SendPass {
  readonly claimed: number;
  readonly uncertain: number;
}

/** Why a message goes nowhere, or null when it has somewhere to go. */
function skipReason(channel: NotificationChannel, contact: ContactRow | undefined): string | null {
  if (!contact) return 'the customer has no profile';
  if (channel === 'EMAIL') {
    if (!contact.email) return 'the profile has no e-mail address';
    if (!contact.email_enabled) return 'the customer turned e-mail off';
  } else {
    if (!contact.phone) return 'the profile has no phone number';
    if (!contact.sms_enabled) return 'the customer turned SMS off';
  }
  return null;
}

/** Sends what is due, in a loop; dispose it to stop after the message in hand. */
export class NotificationSender implements AsyncDisposable {
  readonly #options: SenderOptions;
  readonly #leaseMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;

  constructor(options: SenderOptions) {
    this.#options = options;
    // Longer than one send can take (each step of it at most smtpTimeoutMs), so a live send never loses its lease.
    this.#leaseMs = SMTP_STEPS * options.settings.smtpTimeoutMs + 30_000;
  }

  /** Starts the loop: a pass now, then one every `pollMs` or whenever {@link NotificationSender.wake} is called. */
  start(): this {
    this.wake();
    return this;
  }

  /** Runs a pass soon (at once when idle; right after the current one otherwise). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = this.#loop().finally(() => {
      this.#running = null;
      if (this.#stopped) return;
      if (this.#again) {
        this.#again = false;
        this.wake();
      } else {
        this.#timer = setTimeout(() => this.wake(), this.#options.settings.pollMs);
      }
    });
  }

  async #loop(): Promise<void> {
    try {
      for (;;) {
        const pass = await this.sendDue();
        if (this.#stopped || pass.claimed < SEND_BATCH_SIZE) return;
      }
    } catch (error) {
      this.#options.log.error({ err: error }, 'notification pass failed; retried at the next poll');
    }
  }

  /**
   * One pass: rows whose lease ran out become UNCERTAIN, then up to {@link SEND_BATCH_SIZE} due
   * rows are claimed and sent.
   */
  async sendDue(): Promise<SendPass> {
    const { db, log } = this.#options;
    // Every time here is the database's: replicas whose clocks differ agree on leases and due times.
    const lost = await db.fork().execute<{ id: string }[]>(
      `
      update notification set status = 'UNCERTAIN', lease_until = null, updated_at = now(),
        status_reason = 'the sender stopped while handing it over; it may have arrived, so it is not sent again'
      where status = 'SENDING' and lease_until < now()
      returning id`,
    );
    if (lost.length > 0) log.warn({ ids: lost.map((r) => r.id) }, 'messages left SENDING by a stopped sender marked UNCERTAIN (never resent)');
    const claimed = await inTransaction(db, log, (em) =>
      em.execute<ClaimedRow[]>(
        `
        update notification n set status = 'SENDING', attempts = n.attempts + 1,
          lease_until = now() + (? * interval '1 millisecond'), updated_at = now()
        from (
          select id from notification
          where status = 'PENDING' and next_attempt_at <= now()
          order by next_attempt_at, id
          limit ?
          for update skip locked
        ) due
        where n.id = due.id
        returning n.id, n.channel, n.kind, n.order_id, n.customer_id, n.details, n.attempts,
          (extract(epoch from now() - n.created_at) * 1000)::float8 as age_ms`,
        [this.#leaseMs, SEND_BATCH_SIZE],
      ),
    );
    await Promise.all(claimed.map((row) => this.#deliver(row)));
    return { claimed: claimed.length, uncertain: lost.length };
  }

  async #deliver(row: ClaimedRow): Promise<void> {
    const { db, settings, log } = this.#options;
    let handedOver = false;
    try {
      const em = db.fork();
      const [summary] = await em.execute<SummaryRow[]>('select * from order_summary where order_id = ?', [row.order_id]);
      if (!summary) {
        if (row.age_ms > ORDER_WAIT_MS) {
          await this.#finish(row, 'FAILED', 'the order is unknown to the notification service');
        } else {
          // Soon at first (the OrderPlaced is usually a moment behind), then less and less often.
          await this.#putBack(row, Math.min(MAX_ORDER_RECHECK_MS, Math.max(settings.pollMs, row.age_ms / 4)), true);
        }
        return;
      }
      const [contact] = await em.execute<ContactRow[]>('select email, name, phone, email_enabled, sms_enabled from customer_contact where customer_id = ?', [
        summary.customer_id,
      ]);
      if (!contact && row.age_ms < settings.profileWaitMs) {
        // Looked at again after as long as it has waited (doubling), not at every poll: most
        // customers without a profile never get one, and each look is a claim.
        await this.#putBack(row, Math.max(settings.pollMs, Math.min(settings.profileWaitMs - row.age_ms, row.age_ms)), true);
        return;
      }
      const skip = skipReason(row.channel, contact);
      if (skip !== null) {
        await this.#finish(row, 'SKIPPED', skip, { customerId: summary.customer_id, uncount: true });
        return;
      }
      const recipient = (row.channel === 'EMAIL' ? contact.email : contact.phone) as string;
      const input: MessageInput = {
        kind: row.kind,
        order: {
          orderId: summary.order_id,
          customerId: summary.customer_id,
          total: { amount: summary.total_amount, currency: summary.currency },
          items: summary.items,
          placedAt: summary.placed_at,
        },
        details: row.details,
        customerName: contact.name,
        orderUrl: `${settings.storefrontUrl}/#/orders/${summary.order_id}`,
      };
      const email = renderEmail(input);
      const message: OutgoingMessage = {
        id: row.id,
        to: recipient,
        subject: email.subject,
        text: row.channel === 'EMAIL' ? email.text : renderSms(input),
        html: email.html,
      };
      // The recipient is recorded (so an UNCERTAIN message still says where it went) and the lease
      // renewed, both only while this sender still holds the row: one that lost it sends nothing.
      const held = await em.execute<{ id: string }[]>(
        `
        update notification set recipient = ?, customer_id = ?, lease_until = now() + (? * interval '1 millisecond')
        where id = ? and status = 'SENDING' and attempts = ? and lease_until > now()
        returning id`,
        [recipient, summary.customer_id, this.#leaseMs, row.id, row.attempts],
      );
      if (held.length === 0) {
        log.warn({ notificationId: row.id }, 'a claimed notification was taken from this sender before it was sent; not sent');
        return;
      }
      handedOver = true;
      await this.#record(row, await this.#options.channels[row.channel].send(message));
    } catch (error) {
      log.error({ err: error, notificationId: row.id, handedOver }, 'a notification failed before its outcome was recorded');
      // Not handed over yet: certainly not sent, so it waits for the next try without counting one.
      // Handed over: the lease runs out and the row becomes UNCERTAIN, never sent twice.
      if (!handedOver) await this.#putBack(row, settings.pollMs, true).catch(() => undefined);
    }
  }

  async #record(row: ClaimedRow, outcome: SendOutcome): Promise<void> {
    const { log, settings } = this.#options;
    switch (outcome.kind) {
      case 'accepted': {
        // Whatever the row became meanwhile (an operator's resend queued it again), it was sent.
        const sent = await this.#options.db
          .fork()
          .execute<{ id: string }[]>(
            `update notification set status = 'SENT', sent_at = now(), status_reason = null, lease_until = null, updated_at = now() where id = ? and attempts = ? returning id`,
            [row.id, row.attempts],
          );
        if (sent.length === 0) log.warn({ notificationId: row.id, attempt: row.attempts }, 'a sent notification changed meanwhile; its SENT was not recorded');
        return;
      }
      case 'retry':
        if (row.attempts >= settings.maxAttempts) {
          log.warn({ notificationId: row.id, attempts: row.attempts, reason: outcome.reason }, 'notification dead-lettered after its last attempt');
          await this.#finish(row, 'FAILED', `gave up after ${row.attempts} attempts: ${outcome.reason}`);
        } else {
          log.info({ notificationId: row.id, attempt: row.attempts, reason: outcome.reason }, 'notification refused for now; retried later');
          await this.#putBack(row, this.#retryDelayMs(row.attempts), false, outcome.reason);
        }
        return;
      case 'failed':
        log.warn({ notificationId: row.id, reason: outcome.reason }, 'notification refused for good');
        await this.#finish(row, 'FAILED', outcome.reason);
        return;
      case 'uncertain':
        log.warn({ notificationId: row.id, reason: outcome.reason }, 'notification may or may not have arrived; not sent again');
        await this.#finish(row, 'UNCERTAIN', outcome.reason);
        return;
    }
  }

  /** The wait before try `attempts + 1`: capped exponential with full jitter (the platform's backoff). */
  #retryDelayMs(attempts: number): number {
    let backoff = exponentialBackoff({ baseMs: this.#options.settings.retryBaseMs, maxMs: this.#options.settings.retryMaxMs }).next(undefined);
    for (let n = 1; n < attempts; n++) backoff = backoff.next(undefined);
    return backoff.duration;
  }

  async #putBack(row: ClaimedRow, delayMs: number, uncount: boolean, reason: string | null = null): Promise<void> {
    await this.#options.db.fork().execute(
      `
      update notification set status = 'PENDING', lease_until = null, next_attempt_at = now() + (? * interval '1 millisecond'),
        attempts = attempts - ?, status_reason = ?, updated_at = now()
      where id = ? and status = 'SENDING' and attempts = ?`,
      [delayMs, uncount ? 1 : 0, reason, row.id, row.attempts],
    );
  }

  async #finish(
    row: ClaimedRow,
    status: 'FAILED' | 'SKIPPED' | 'UNCERTAIN',
    reason: string,
    options: { readonly customerId?: string; readonly uncount?: boolean } = {},
  ): Promise<void> {
    await this.#options.db.fork().execute(
      `
      update notification set status = ?, status_reason = ?, lease_until = null, attempts = attempts - ?,
        customer_id = coalesce(customer_id, ?), updated_at = now()
      where id = ? and status = 'SENDING' and attempts = ?`,
      [status, reason.slice(0, 1000), options.uncount ? 1 : 0, options.customerId ?? null, row.id, row.attempts],
    );
  }

  /** Stops the loop and waits for the pass in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
