/**
 * The notification service's own settings (`NOTIFICATION_*`): where mail goes, whom it is from,
 * where its links point and how hard a failing send is retried. The platform parses them once at
 * start-up and hands them over as `runtime.settings`.
 */
import { integer, oneOf, text, url, z } from '@swiftcart/platform';

/** The SMS providers this build knows; `development` writes to the database and the log (no real sink here). */
export const SMS_PROVIDERS = ['development'] as const;

/** How the notification service sends. */
export interface NotificationSettings {
  /** The SMTP server e-mail goes through (`NOTIFICATION_SMTP_URL`). */
  readonly smtpUrl: string;
  /** The From header of every e-mail (`NOTIFICATION_EMAIL_FROM`). */
  readonly emailFrom: string;
  /** Where the storefront is, for the link to the order page (`NOTIFICATION_STOREFRONT_URL`). */
  readonly storefrontUrl: string;
  readonly smsProvider: (typeof SMS_PROVIDERS)[number];
  /** Tries of one message before it is FAILED, the dead letter (`NOTIFICATION_MAX_ATTEMPTS`). */
  readonly maxAttempts: number;
  /** The ceiling of the first retry's delay; each further one doubles, up to `retryMaxMs`. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** How long the mail server may take per connection step, in milliseconds. */
  readonly smtpTimeoutMs: number;
  /** How often the sender looks for due messages when it was not woken. */
  readonly pollMs: number;
  /**
   * How long a message waits for a profile it finds missing before it is SKIPPED: a customer who
   * registered a moment before ordering may reach this service a moment after the order.
   */
  readonly profileWaitMs: number;
  /** Events older than this are recorded SKIPPED, not sent (`NOTIFICATION_MAX_EVENT_AGE_MS`). */
  readonly maxEventAgeMs: number;
}

/** The notification service's variables, read into {@link NotificationSettings}. */
export const notificationSettings = z
  .object({
    NOTIFICATION_SMTP_URL: url({ default: 'smtp://127.0.0.1:1025', protocols: ['smtp:', 'smtps:'] }).describe(
      'the SMTP server e-mail goes through; `npm start` runs MailDev on 1025 (web inbox on 1080)',
    ),
    NOTIFICATION_EMAIL_FROM: text({ default: 'SwiftCart <orders@swiftcart.dev>' }).describe('the From header of every e-mail'),
    NOTIFICATION_STOREFRONT_URL: url({ default: 'http://localhost:5173', protocols: ['http:', 'https:'] }).describe(
      "the storefront's address: messages link to `<it>/#/orders/<id>`",
    ),
    NOTIFICATION_SMS_PROVIDER: oneOf(SMS_PROVIDERS, { default: 'development' }).describe(
      'who sends SMS; `development` writes each one to the `sms_message` table and the log',
    ),
    NOTIFICATION_MAX_ATTEMPTS: integer({ default: 6, min: 1, max: 50 }).describe(
      'tries of one message before it is `FAILED` (the dead letter); only a temporary refusal or a refused connection is retried',
    ),
    NOTIFICATION_RETRY_BASE_MS: integer({ default: 1_000, min: 1, max: 3_600_000, unit: 'ms' }).describe(
      "the ceiling of the first retry's delay; each further retry doubles it (full jitter)",
    ),
    NOTIFICATION_RETRY_MAX_MS: integer({ default: 300_000, min: 1, max: 86_400_000, unit: 'ms' }).describe('no retry waits longer'),
    NOTIFICATION_SMTP_TIMEOUT_MS: integer({ default: 10_000, min: 100, max: 300_000, unit: 'ms' }).describe(
      'how long the mail server may take to accept a connection, greet, or answer a command',
    ),
    NOTIFICATION_POLL_MS: integer({ default: 500, min: 10, max: 60_000, unit: 'ms' }).describe(
      'how often the sender looks for messages that are due (a retry whose time has come)',
    ),
    NOTIFICATION_PROFILE_WAIT_MS: integer({ default: 5_000, min: 0, max: 3_600_000, unit: 'ms' }).describe(
      "how long a message waits for the customer's profile to arrive before it is `SKIPPED` for want of one",
    ),
    NOTIFICATION_MAX_EVENT_AGE_MS: integer({ default: 86_400_000, min: 1_000, max: 31 * 86_400_000, unit: 'ms' }).describe(
      'an event older than this when it is read is recorded `SKIPPED`, not sent: a new deployment reads the topics from their beginning',
    ),
  })
  .transform(
    (s): NotificationSettings => ({
      smtpUrl: s.NOTIFICATION_SMTP_URL,
      emailFrom: s.NOTIFICATION_EMAIL_FROM,
      storefrontUrl: s.NOTIFICATION_STOREFRONT_URL.replace(/\/+$/, ''),
      smsProvider: s.NOTIFICATION_SMS_PROVIDER,
      maxAttempts: s.NOTIFICATION_MAX_ATTEMPTS,
      retryBaseMs: s.NOTIFICATION_RETRY_BASE_MS,
      retryMaxMs: Math.max(s.NOTIFICATION_RETRY_MAX_MS, s.NOTIFICATION_RETRY_BASE_MS),
      smtpTimeoutMs: s.NOTIFICATION_SMTP_TIMEOUT_MS,
      pollMs: s.NOTIFICATION_POLL_MS,
      profileWaitMs: s.NOTIFICATION_PROFILE_WAIT_MS,
      maxEventAgeMs: s.NOTIFICATION_MAX_EVENT_AGE_MS,
    }),
  );
