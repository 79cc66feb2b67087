/**
 * Admission control for `placeOrder` (back-pressure instead of cancellation, ADR 0011): while the
 * saga lags, new orders are refused at once with OVERLOADED and a retry delay, instead of being
 * accepted into a backlog that the deadline would later cancel.
 *
 * The lag is the age of the `lagRank`-th oldest PENDING order (5 by default): how long accepted
 * orders have waited for their stock to be reserved, through the order relay, inventory's consumer
 * and the saga's own consumer. Not the very oldest: an order whose OrderPlaced was dead-lettered
 * stays PENDING until its deadline, and one such order must not close the door for everyone. It is
 * read from the database every `probeIntervalMs` (an index look-up on
 * `orders_pending_created_idx`), so every replica of the order service sees the same figure.
 * The gate closes when the lag passes `maxLagMs` and opens again below half of it, so that it does
 * not flap at the threshold.
 */
import { ErrorCode, apiError, type Database, type Logger } from '@swiftcart/platform';

/** How the gate is set: see {@link OrderSettings}. */
export interface AdmissionOptions {
  readonly db: Database;
  readonly log: Logger;
  /** The lag above which placeOrder is refused; 0 turns admission control off. */
  readonly maxLagMs: number;
  readonly probeIntervalMs: number;
  /** Which PENDING order's age is the lag, counted from the oldest (1: the oldest); default 1. */
  readonly lagRank?: number;
}

/** The longest retry delay suggested to a refused client. */
const MAX_RETRY_AFTER_SECONDS = 30;

/** Whether new orders are admitted, from the saga's measured lag; shared by every request of a service. */
export class SagaAdmission implements AsyncDisposable {
  readonly #options: AdmissionOptions;
  #lagMs = 0;
  #open = true;
  #timer: NodeJS.Timeout | undefined;
  #probe: Promise<void> | null = null;
  #stopped = false;
  #refused = 0;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** The `lagRank`-th oldest PENDING order's age at the last probe, in ms (0 when there are fewer). */
  get lagMs(): number {
    return this.#lagMs;
  }

  /** Whether placeOrder admits new orders now. */
  get isOpen(): boolean {
    return this.#open;
  }

  /** placeOrder calls refused since the start. */
  get refused(): number {
    return this.#refused;
  }

  /** Probes at once, then every `probeIntervalMs` after the previous probe ended. Off when `maxLagMs` is 0. */
  start(): this {
    if (this.#options.maxLagMs === 0) return this;
    const tick = () => {
      this.#timer = undefined;
      if (this.#stopped) return;
      this.#probe = this.probe().finally(() => {
        this.#probe = null;
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#options.probeIntervalMs);
      });
    };
    tick();
    return this;
  }

  /** Measures the lag now and opens or closes the gate; a failed probe leaves the gate as it was. */
  async probe(): Promise<void> {
    try {
      const [row] = await this.#options.db.fork().execute<{ lag_ms: number | null }[]>(
        `
        select (extract(epoch from clock_timestamp() - created_at) * 1000)::float8 as lag_ms
        from orders where status = 'PENDING' order by created_at offset ? limit 1`,
        [(this.#options.lagRank ?? 1) - 1],
      );
      this.#update(row ? Math.max(0, Number(row.lag_ms)) : 0);
    } catch (error) {
      this.#options.log.warn({ err: error }, 'measuring the saga lag failed; admission unchanged');
    }
  }

  #update(lagMs: number): void {
    const { maxLagMs, log } = this.#options;
    this.#lagMs = lagMs;
    if (this.#open && lagMs > maxLagMs) {
      this.#open = false;
      log.warn({ lagMs: Math.round(lagMs), maxLagMs }, 'the saga lags: placeOrder refuses new orders (OVERLOADED) until it catches up');
    } else if (!this.#open && lagMs <= maxLagMs / 2) {
      this.#open = true;
      log.info({ lagMs: Math.round(lagMs), maxLagMs }, 'the saga caught up: placeOrder admits new orders again');
    }
  }

  /** Throws OVERLOADED, with `retryAfterSeconds`, while the gate is closed. */
  admit(): void {
    if (this.#open) return;
    this.#refused++;
    const retryAfterSeconds = Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil((this.#lagMs - this.#options.maxLagMs / 2) / 1000)));
    throw apiError(ErrorCode.Overloaded, `Too many orders are being processed right now: try again in ${retryAfterSeconds} s (your order was not placed)`, {
      retryAfterSeconds,
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#probe;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
