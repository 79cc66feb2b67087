import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { type ServiceModule, registerBreakerMetrics, runsWorkers } from '@swiftcart/platform';
import { type PaymentSettings, paymentSettings } from './authorization.ts';
import type { PaymentContext } from './context.ts';
import { Payment, Refund } from './entities.ts';
import { migrations } from './migrations.ts';
import { orderEventsConsumer, providerOf } from './order-events.ts';
import { findPaymentsByOrder } from './payments.ts';
import { paymentResolvers } from './resolvers.ts';

/**
 * The payment service: one payment per order against a mock provider, and refunds. It consumes
 * `order.events.v1` (PaymentRequested, OrderCancelled) and publishes `payment.events.v1`. Its
 * `PAYMENT_*` settings (authorization.ts) are parsed by the platform when the service starts.
 */
export const paymentService: ServiceModule<PaymentContext, PaymentSettings> = {
  name: 'payment',
  settings: paymentSettings,
  entities: [Payment, Refund],
  migrations,
  publishesEvents: true,
  consumers: (runtime) => [orderEventsConsumer(runtime)],
  // The provider is called by the consumer: its breaker is a worker's.
  metrics: (runtime, registry) => {
    if (runsWorkers(runtime.config.serviceRole)) registerBreakerMetrics(registry, 'payment-provider', () => providerOf(runtime).circuitState);
  },
  resolvers: () => paymentResolvers() as GraphQLResolverMap<PaymentContext>,
  context: (_runtime, base) => ({
    ...base,
    paymentsByOrder: new DataLoader(async (orderIds) => {
      const found = await findPaymentsByOrder(base.em, orderIds);
      return orderIds.map((id) => found.get(id) ?? null);
    }),
  }),
};
