import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { type Registry, type ServiceModule, type ServiceRuntime, runsWorkers, scrapedGauge } from '@swiftcart/platform';
import { DevelopmentSmsProvider, SmtpEmailChannel } from './channels.ts';
import { notificationConsumers } from './consumers.ts';
import type { NotificationContext } from './context.ts';
import { Notification } from './entities.ts';
import { migrations } from './migrations.ts';
import { findByOrders, findNotifications } from './notifications.ts';
import { notificationResolvers } from './resolvers.ts';
import { NotificationSender } from './sender.ts';
import { type NotificationSettings, notificationSettings } from './settings.ts';

/** Starts the sender over SMTP and the configured SMS provider; disposing it stops both. */
export function startSender(runtime: ServiceRuntime<NotificationSettings>): AsyncDisposable {
  const { settings } = runtime;
  const email = new SmtpEmailChannel({ url: settings.smtpUrl, from: settings.emailFrom, timeoutMs: settings.smtpTimeoutMs });
  const sms = new DevelopmentSmsProvider(runtime.db, runtime.log);
  const sender = new NotificationSender({ db: runtime.db, log: runtime.log, settings, channels: { EMAIL: email, SMS: sms } }).start();
  return {
    async [Symbol.asyncDispose]() {
      await sender.stop();
      await email[Symbol.asyncDispose]();
      await sms[Symbol.asyncDispose]();
    },
  };
}

/**
 * `swiftcart_notifications` by channel and status, read from the database at each scrape where
 * workers run: FAILED (the dead letter) and UNCERTAIN are what an operator watches, and a growing
 * PENDING says the mail server is away.
 */
export function registerNotificationMetrics(runtime: ServiceRuntime, registry: Registry): void {
  if (!runsWorkers(runtime.config.serviceRole)) return;
  scrapedGauge(
    registry,
    { name: 'swiftcart_notifications', help: 'Notifications in the database, by channel and status.', labelNames: ['channel', 'status'] },
    async (gauge) => {
      const rows = await runtime.db
        .fork()
        .execute<{ channel: string; status: string; n: number }[]>('select channel, status, count(*)::int as n from notification group by 1, 2');
      for (const row of rows) gauge.set({ channel: row.channel, status: row.status }, Number(row.n));
    },
  );
}

/**
 * The notification service: tells customers what happened to their orders, by e-mail (SMTP) and
 * SMS (ADR 0022). It consumes the order, shipment, payment and customer events and publishes none.
 */
export const notificationService: ServiceModule<NotificationContext, NotificationSettings> = {
  name: 'notification',
  entities: [Notification],
  migrations,
  settings: notificationSettings,
  consumers: (runtime) => notificationConsumers(runtime.settings),
  background: (runtime) => startSender(runtime),
  metrics: (runtime, registry) => registerNotificationMetrics(runtime, registry),
  resolvers: () => notificationResolvers() as GraphQLResolverMap<NotificationContext>,
  context: (_runtime, base) => ({
    ...base,
    notifications: new DataLoader(async (ids) => {
      const found = await findNotifications(base.em, ids);
      return ids.map((id) => found.get(id) ?? null);
    }),
    notificationsByOrder: new DataLoader(async (ids) => {
      const found = await findByOrders(base.em, ids);
      return ids.map((id) => found.get(id) ?? { owner: null, notifications: [] });
    }),
  }),
};
