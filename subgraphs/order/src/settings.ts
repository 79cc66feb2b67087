/**
 * The order service's own settings (`ORDER_*`): the saga's timing and its admission control. The
 * platform's `Config` holds what every service shares; these belong to the saga only. The platform
 * parses them once at start-up (platform/src/service.ts) and hands them to the service as
 * `runtime.settings`.
 */
import { integer, z } from '@swiftcart/platform';

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

const HOUR_MS = 3_600_000;

/** The order service's variables, read into {@link OrderSettings}. */
export const orderSettings = z
  .object({
    // The saga's safety net, not its speed limit (ADR 0012): long enough to wait out an outage.
    ORDER_DEADLINE_MS: integer({ default: 600_000, min: 100, max: 7 * 24 * HOUR_MS, unit: 'ms' }).describe(
      "the saga's safety net: an order still PENDING or AWAITING_PAYMENT this long after it was placed is cancelled and compensated (ADR 0012; outages and slowness do not cancel orders)",
    ),
    ORDER_SWEEP_INTERVAL_MS: integer({ default: 1_000, min: 10, max: HOUR_MS, unit: 'ms' }).describe(
      'how often the order service looks for orders past their deadline',
    ),
    ORDER_ADMISSION_MAX_LAG_MS: integer({ default: 2_000, min: 0, max: HOUR_MS, unit: 'ms' }).describe(
      '`placeOrder` answers `OVERLOADED` while the PENDING orders have waited longer than this (the `ORDER_ADMISSION_LAG_RANK`-th oldest of them), until the wait is back under half of it; `0` turns admission control off',
    ),
    ORDER_ADMISSION_PROBE_MS: integer({ default: 200, min: 10, max: 60_000, unit: 'ms' }).describe('how often the order service measures that wait'),
    ORDER_ADMISSION_LAG_RANK: integer({ default: 5, min: 1, max: 1_000 }).describe(
      'whose wait counts, from the oldest PENDING order; 5 lets up to four orders stuck for good (their OrderPlaced dead-lettered) wait for their deadline without closing the door for everyone',
    ),
  })
  .transform(
    (s): OrderSettings => ({
      deadlineMs: s.ORDER_DEADLINE_MS,
      sweepIntervalMs: s.ORDER_SWEEP_INTERVAL_MS,
      admissionMaxLagMs: s.ORDER_ADMISSION_MAX_LAG_MS,
      admissionProbeMs: s.ORDER_ADMISSION_PROBE_MS,
      admissionLagRank: s.ORDER_ADMISSION_LAG_RANK,
    }),
  );
