import { type ServiceRuntime, type Viewer, requireCustomer, requireRole } from '@swiftcart/platform';
import type { Resolvers } from './generated/resolvers.ts';
import type { SalesBucketRecord } from './entities.ts';
import { currentBucket, salesSummary, topProducts } from './figures.ts';
import { parseCurrency, parseFirst, parseRange, parseSummaryRange } from './inputs.ts';
import { followSales } from './live.ts';
import type { AnalyticsSettings } from './settings.ts';

/** Sales figures are for admins: UNAUTHENTICATED without a token, FORBIDDEN without the admin role. */
function requireAdmin(viewer: Viewer): void {
  requireCustomer(viewer, 'sales figures');
  requireRole(viewer, 'admin');
}

/** The analytics subgraph's resolvers; `runtime` feeds `salesUpdated` and names the default currency. */
export function analyticsResolvers(runtime: Pick<ServiceRuntime<AnalyticsSettings>, 'live' | 'config' | 'settings'>): Resolvers {
  const defaultCurrency = runtime.settings.currency;
  return {
    Query: {
      // Who may ask comes before what is asked: a customer learns nothing from a validation error.
      salesSummary: (_, { from, to, granularity, currency }, ctx) => {
        requireAdmin(ctx.viewer);
        const range = parseSummaryRange(from, to, granularity);
        return salesSummary(ctx.em, granularity, range.from, range.to, parseCurrency(currency, defaultCurrency));
      },
      topProducts: (_, { from, to, first, currency }, ctx) => {
        requireAdmin(ctx.viewer);
        const range = parseRange(from, to);
        return topProducts(ctx.em, range.from, range.to, parseCurrency(currency, defaultCurrency), parseFirst(first));
      },
    },
    Subscription: {
      salesUpdated: {
        // Everything thrown here reaches the client as the subscription's only result, before any figure.
        subscribe: (_, { granularity, currency }, ctx) => {
          requireAdmin(ctx.viewer);
          const code = parseCurrency(currency, defaultCurrency);
          return followSales({
            feed: runtime.live,
            config: runtime.config,
            log: ctx.log,
            granularity,
            currency: code,
            current: () => currentBucket(ctx.em, granularity, code),
          });
        },
        // The iterator yields buckets themselves, not `{ salesUpdated }` payloads.
        resolve: (bucket: SalesBucketRecord) => bucket,
      },
    },
  };
}
