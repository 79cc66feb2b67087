/**
 * The product service's own settings (`PRODUCT_*`), parsed by the platform once at start-up and
 * handed to the service as `runtime.settings` (platform/src/service.ts).
 */
import { integer, z } from '@swiftcart/platform';

/** How the catalogue caches. */
export interface ProductSettings {
  /** How long a cached product or listing page lives in Redis (`PRODUCT_CACHE_TTL_SECONDS`). */
  readonly cacheTtlSeconds: number;
}

/** The product service's variables, read into {@link ProductSettings}. */
export const productSettings = z
  .object({
    PRODUCT_CACHE_TTL_SECONDS: integer({ default: 60, min: 1, max: 86_400, unit: 's' }).describe(
      'how long a cached product or listing page lives in Redis; writes invalidate it sooner',
    ),
  })
  .transform((s): ProductSettings => ({ cacheTtlSeconds: s.PRODUCT_CACHE_TTL_SECONDS }));
