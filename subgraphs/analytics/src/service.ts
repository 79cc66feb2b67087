import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { ServiceModule, ServiceRuntime } from '@swiftcart/platform';
import type { AnalyticsContext } from './context.ts';
import { type CountingInstruments, salesConsumer } from './consumer.ts';
import { AnalyticsEvent, AnalyticsGeneration, AnalyticsOrder, ProductSales, SalesBucket } from './entities.ts';
import { registerAnalyticsMetrics } from './metrics.ts';
import { migrations } from './migrations.ts';
import { analyticsResolvers } from './resolvers.ts';
import { startEventRetention } from './retention.ts';
import { type AnalyticsSettings, analyticsSettings } from './settings.ts';

const instruments = new WeakMap<ServiceRuntime, CountingInstruments>();

/** One set of counting instruments per running service, shared by its consumer and its metrics. */
function instrumentsOf(runtime: ServiceRuntime): CountingInstruments {
  let found = instruments.get(runtime);
  if (!found) instruments.set(runtime, (found = {}));
  return found;
}

/**
 * The analytics service: sales per hour and per day and currency, and units and revenue per sku
 * and hour, counted from the order and payment events (`analytics.sales`), read by admins
 * (`salesSummary`, `topProducts`) and followed live (`salesUpdated`). It publishes no events. The
 * figures can be rebuilt from the topics beside the running service (generations.ts, ADR 0023).
 */
export const analyticsService: ServiceModule<AnalyticsContext, AnalyticsSettings> = {
  name: 'analytics',
  settings: analyticsSettings,
  entities: [AnalyticsGeneration, AnalyticsOrder, AnalyticsEvent, SalesBucket, ProductSales],
  migrations,
  consumers: (runtime) => [salesConsumer(runtime, instrumentsOf(runtime))],
  background: (runtime) => startEventRetention({ config: runtime.config, db: runtime.db, log: runtime.log.child({ component: 'retention' }) }),
  metrics: (runtime, registry) => registerAnalyticsMetrics(runtime, registry, instrumentsOf(runtime)),
  resolvers: (runtime) => analyticsResolvers(runtime) as GraphQLResolverMap<AnalyticsContext>,
};
