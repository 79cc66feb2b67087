/**
 * The analytics service's own settings (`ANALYTICS_*`), parsed once at start-up by the platform
 * (platform/src/service.ts) and handed to the service as `runtime.settings`.
 */
import { text, z } from '@swiftcart/platform';

/** What the analytics service is configured with. */
export interface AnalyticsSettings {
  /** The currency `salesSummary`, `topProducts` and `salesUpdated` answer in when none is asked for (`ANALYTICS_CURRENCY`). */
  readonly currency: string;
}

/** The analytics service's variables, read into {@link AnalyticsSettings}. */
export const analyticsSettings = z
  .object({
    ANALYTICS_CURRENCY: text({ default: 'EUR', pattern: /^[A-Z]{3}$/, patternText: 'an ISO-4217 code: three capital letters' }).describe(
      'the currency of the sales figures when a query or subscription names none (each currency is counted apart, never converted)',
    ),
  })
  .transform((s): AnalyticsSettings => ({ currency: s.ANALYTICS_CURRENCY }));
