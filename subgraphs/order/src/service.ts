import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { ServiceModule, ServiceRuntime } from '@swiftcart/platform';
import type { OrderContext } from './context.ts';
import { orderConsumers } from './consumers.ts';
import { CataloguePrice, Order, OrderItem, OrderTransition } from './entities.ts';
import { OrderAnnouncer, projectOrders } from './live.ts';
import { migrations } from './migrations.ts';
import { findOrders } from './orders.ts';
import { orderResolvers } from './resolvers.ts';
import { type OrderSettings, orderSettings } from './settings.ts';
import { startDeadlineSweeper } from './sweeper.ts';
import { SagaAdmission } from './admission.ts';
import { registerOrderMetrics } from './metrics.ts';

const announcers = new WeakMap<ServiceRuntime, OrderAnnouncer>();
const admissions = new WeakMap<ServiceRuntime, SagaAdmission>();

/** One announcer of order changes per running service, shared by mutations, consumers and sweeper. */
export function announcerOf(runtime: ServiceRuntime): OrderAnnouncer {
  let announcer = announcers.get(runtime);
  if (!announcer) announcers.set(runtime, (announcer = new OrderAnnouncer(runtime)));
  return announcer;
}

/** One admission gate per running service: probed beside the API, asked by placeOrder. */
export function admissionOf(runtime: ServiceRuntime<OrderSettings>): SagaAdmission {
  let admission = admissions.get(runtime);
  if (!admission) {
    const { settings } = runtime;
    admission = new SagaAdmission({
      db: runtime.db,
      log: runtime.log.child({ component: 'admission' }),
      maxLagMs: settings.admissionMaxLagMs,
      probeIntervalMs: settings.admissionProbeMs,
      lagRank: settings.admissionLagRank,
    });
    admissions.set(runtime, admission);
  }
  return admission;
}

/**
 * The order service: orders, their lines and timelines, the local catalogue price replica, and the
 * saga's orchestrator (ADR 0008). It publishes order events through its outbox, consumes the
 * product events (price replica) and the participants' events (saga), and sweeps overdue orders.
 * While the saga lags, placeOrder refuses new orders with OVERLOADED (admission.ts). Its `ORDER_*`
 * settings (settings.ts) are parsed by the platform when the service starts.
 */
export const orderService: ServiceModule<OrderContext, OrderSettings> = {
  name: 'order',
  settings: orderSettings,
  entities: [Order, OrderItem, OrderTransition, CataloguePrice],
  migrations,
  publishesEvents: true,
  project: (runtime) => projectOrders(announcerOf(runtime)),
  consumers: (runtime) => orderConsumers({ registry: runtime.events, announcer: announcerOf(runtime) }),
  background: (runtime) => {
    const sweeper = startDeadlineSweeper({
      db: runtime.db,
      log: runtime.log.child({ component: 'deadline-sweeper' }),
      registry: runtime.events,
      announcer: announcerOf(runtime),
      intervalMs: runtime.settings.sweepIntervalMs,
    });
    return { [Symbol.asyncDispose]: () => sweeper.stop() };
  },
  // The gate is measured where placeOrder is answered, so an api process without workers has it too.
  besideApi: (runtime) => {
    const admission = admissionOf(runtime).start();
    return { [Symbol.asyncDispose]: () => admission.stop() };
  },
  metrics: (runtime, registry) => registerOrderMetrics(runtime, registry, () => admissionOf(runtime)),
  resolvers: (runtime) =>
    orderResolvers(
      { settings: runtime.settings, registry: runtime.events, announcer: announcerOf(runtime), log: runtime.log, admission: admissionOf(runtime) },
      runtime,
    ) as GraphQLResolverMap<OrderContext>,
  context: (_runtime, base) => ({
    ...base,
    orders: new DataLoader(async (ids) => {
      const found = await findOrders(base.em, ids);
      return ids.map((id) => found.get(id) ?? null);
    }),
  }),
};
