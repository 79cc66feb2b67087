/**
 * The order service's own settings, read from the environment. The platform's `Config` holds what
 * every service shares; these belong to the saga only.
 */
import { integerVar } from '@swiftcart/platform';

/** What the saga's timing depends on. */
export interface OrderSettings {
  /** How long a placed order may stay PENDING or AWAITING_PAYMENT before it is cancelled (`ORDER_DEADLINE_MS`). */
  readonly deadlineMs: number;
  /** How often the deadline sweeper looks for overdue orders (`ORDER_SWEEP_INTERVAL_MS`). */
  readonly sweepIntervalMs: number;
}

export const DEFAULT_ORDER_DEADLINE_MS = 30_000;
export const DEFAULT_ORDER_SWEEP_INTERVAL_MS = 1_000;


/**
 * Reads `ORDER_DEADLINE_MS` (default 30 s, 100 ms to 7 days) and `ORDER_SWEEP_INTERVAL_MS`
 * (default 1 s, 10 ms to 1 hour); throws {@link ConfigError} for a value outside those bounds.
 */
export function loadOrderSettings(env: NodeJS.ProcessEnv = process.env): OrderSettings {
  return {
    deadlineMs: integerVar(env, 'ORDER_DEADLINE_MS', DEFAULT_ORDER_DEADLINE_MS, 100, 7 * 24 * 3_600_000),
    sweepIntervalMs: integerVar(env, 'ORDER_SWEEP_INTERVAL_MS', DEFAULT_ORDER_SWEEP_INTERVAL_MS, 10, 3_600_000),
  };
}
