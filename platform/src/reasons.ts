/**
 * The reasons events carry (a cancellation's, a declined payment's, a stock adjustment's): one
 * limit for every service, the `maxLength` of `reason` in the event contracts (schema/events/).
 * This module imports nothing, so pure code (order's saga) can use it without the platform's index.
 */

/** The longest reason an event carries, in characters (code points, as JSON Schema counts them). */
export const MAX_REASON_LENGTH = 500;

/**
 * `text` cut to {@link MAX_REASON_LENGTH} characters, ending in `…` when it was cut. It counts code
 * points as JSON Schema does, and never splits a surrogate pair, so the result always fits the
 * contracts.
 */
export function clipReason(text: string): string {
  const chars = Array.from(text);
  return chars.length <= MAX_REASON_LENGTH ? text : `${chars.slice(0, MAX_REASON_LENGTH - 1).join('')}…`;
}
