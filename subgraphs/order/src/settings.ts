/**
 * The order service's own settings, read from the environment. The platform's `Config` holds what
 * every service shares; these belong to the saga only.
 */
import { ConfigError } from '@swiftcart/platform';

/** What the saga's timing depends on. */
export interface OrderSettings {
  /** How long a placed order may stay PENDING or AWAITING_PAYMENT before it is cancelled (`ORDER_DEADLINE_MS`). */
  readonly deadlineMs: number;
  /** How often the deadline sweeper looks for overdue orders (`ORDER_SWEEP_INTERVAL_MS`). */
  readonly sweepIntervalMs: number;
}

export const DEFAULT_ORDER_DEADLINE_MS = 30_000;
export const DEFAULT_ORDER_SWEEP_INTERVAL_MS = 1_000;

function integer(env: NodeJS.ProcessEnv, key: string, fallback: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/**
 * Reads `ORDER_DEADLINE_MS` (default 30 s, 100 ms to 7 days) and `ORDER_SWEEP_INTERVAL_MS`
 * (default 1 s, 10 ms to 1 hour); throws {@link ConfigError} for a value outside those bounds.
 */
export function loadOrderSettings(env: NodeJS.ProcessEnv = process.env): OrderSettings {
  return {
    deadlineMs: integer(env, 'ORDER_DEADLINE_MS', DEFAULT_ORDER_DEADLINE_MS, 100, 7 * 24 * 3_600_000),
    sweepIntervalMs: integer(env, 'ORDER_SWEEP_INTERVAL_MS', DEFAULT_ORDER_SWEEP_INTERVAL_MS, 10, 3_600_000),
  };
}
