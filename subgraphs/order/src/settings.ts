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
  /** The saga lag (oldest PENDING order's age) above which placeOrder answers OVERLOADED; 0 is off (`ORDER_ADMISSION_MAX_LAG_MS`). */
  readonly admissionMaxLagMs: number;
  /** How often that lag is measured (`ORDER_ADMISSION_PROBE_MS`). */
  readonly admissionProbeMs: number;
  /**
   * Which PENDING order's age is the lag, counted from the oldest (`ORDER_ADMISSION_LAG_RANK`): with
   * 5, four orders stuck for good (their OrderPlaced dead-lettered) do not close the door for
   * everyone, while a real backlog, hundreds of orders, still does.
   */
  readonly admissionLagRank: number;
}

/** The saga's safety net, not its speed limit (ADR 0012): long enough to wait out an outage. */
export const DEFAULT_ORDER_DEADLINE_MS = 600_000;
export const DEFAULT_ORDER_SWEEP_INTERVAL_MS = 1_000;
export const DEFAULT_ORDER_ADMISSION_MAX_LAG_MS = 2_000;
export const DEFAULT_ORDER_ADMISSION_PROBE_MS = 200;
export const DEFAULT_ORDER_ADMISSION_LAG_RANK = 5;


/**
 * Reads `ORDER_DEADLINE_MS` (default 10 minutes, 100 ms to 7 days), `ORDER_SWEEP_INTERVAL_MS` (default
 * 1 s, 10 ms to 1 hour), `ORDER_ADMISSION_MAX_LAG_MS` (default 2 s, 0 (off) to 1 hour) and
 * `ORDER_ADMISSION_PROBE_MS` (default 200 ms, 10 ms to 1 minute) and `ORDER_ADMISSION_LAG_RANK` (default 5,
 * 1 to 1,000); throws {@link ConfigError} for a
 * value outside those bounds.
 */
export function loadOrderSettings(env: NodeJS.ProcessEnv = process.env): OrderSettings {
  return {
    deadlineMs: integerVar(env, 'ORDER_DEADLINE_MS', DEFAULT_ORDER_DEADLINE_MS, 100, 7 * 24 * 3_600_000),
    sweepIntervalMs: integerVar(env, 'ORDER_SWEEP_INTERVAL_MS', DEFAULT_ORDER_SWEEP_INTERVAL_MS, 10, 3_600_000),
    admissionMaxLagMs: integerVar(env, 'ORDER_ADMISSION_MAX_LAG_MS', DEFAULT_ORDER_ADMISSION_MAX_LAG_MS, 0, 3_600_000),
    admissionProbeMs: integerVar(env, 'ORDER_ADMISSION_PROBE_MS', DEFAULT_ORDER_ADMISSION_PROBE_MS, 10, 60_000),
    admissionLagRank: integerVar(env, 'ORDER_ADMISSION_LAG_RANK', DEFAULT_ORDER_ADMISSION_LAG_RANK, 1, 1_000),
  };
}
