/**
 * The cart service's own settings (`CART_*`): how long a cart is kept and how big it may grow. The
 * platform parses them once at start-up and hands them over as `runtime.settings`.
 */
import { integer, z } from '@swiftcart/platform';

/** What bounds a cart. */
export interface CartSettings {
  /** How long a cart is kept after its last change (`CART_TTL_SECONDS`), in milliseconds. */
  readonly ttlMs: number;
  /** Distinct skus per cart (`CART_MAX_LINES`). */
  readonly maxLines: number;
  /** Units per line (`CART_MAX_QUANTITY`). */
  readonly maxQuantity: number;
}

const DAY_SECONDS = 86_400;

/** The cart service's variables, read into {@link CartSettings}. */
export const cartSettings = z
  .object({
    CART_TTL_SECONDS: integer({ default: 30 * DAY_SECONDS, min: 60, max: 365 * DAY_SECONDS, unit: 's' }).describe(
      'how long a cart is kept in Redis after its last change; an untouched cart is then forgotten',
    ),
    // At most placeOrder's own limits (100 lines, 1,000 units a line), so a full cart still checks out.
    CART_MAX_LINES: integer({ default: 50, min: 1, max: 100 }).describe('distinct skus a cart may hold; `addToCart` of one more answers `CART_LIMIT_EXCEEDED`'),
    CART_MAX_QUANTITY: integer({ default: 100, min: 1, max: 1_000 }).describe('units of one sku a cart may hold; more answers `CART_LIMIT_EXCEEDED`'),
  })
  .transform((s): CartSettings => ({ ttlMs: s.CART_TTL_SECONDS * 1_000, maxLines: s.CART_MAX_LINES, maxQuantity: s.CART_MAX_QUANTITY }));
