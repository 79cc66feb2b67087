/**
 * The analytics consumers: the live one (`analytics.sales`), which counts every order and payment
 * event it is handed into the generations that follow the live events, and a rebuild's
 * (`analytics.rebuild.<generation>`), which counts the topics from their beginning into one new
 * generation (ADR 0023). Both are the platform's inbox consumers: validated events, one
 * transaction per batch with the inbox rows, retries, dead letters.
 */
import { type ConsumerSpec, type EventHandler, type ServiceRuntime, defineConsumer } from '@swiftcart/platform';
import type { CountedEvent, CountedEventType } from './buckets.ts';
import { type CountContext, type CountTarget, countEvents } from './counting.ts';
import { announceBuckets } from './live.ts';

/** The consumer group and inbox name of the live consumer. */
export const SALES_CONSUMER = 'analytics.sales';

/** The consumer group and inbox name of the rebuild of `generation`: a new group, so it starts from the beginning. */
export function rebuildConsumerName(generation: number): string {
  return `analytics.rebuild.${generation}`;
}

/** What the consumers report to the service's metrics. */
export interface CountingInstruments {
  /** Seconds from an event's `occurredAt` until it was counted into the CURRENT generation. */
  observeLag?(seconds: readonly number[]): void;
}

function countingConsumer(
  consumer: string,
  target: CountTarget,
  runtime: Pick<ServiceRuntime, 'redis' | 'config' | 'log'>,
  instruments: CountingInstruments,
  options: Partial<Pick<ConsumerSpec, 'maxBatchSize'>> = {},
): ConsumerSpec {
  const context = (log: CountContext['log'], afterCommit: CountContext['afterCommit']): CountContext => ({
    log,
    afterCommit,
    announce: (buckets) => announceBuckets(runtime, buckets),
    observeLag: (seconds) => instruments.observeLag?.(seconds),
  });
  // Applied on its own (a retry, a batch split around a poison event), an event goes the same way as in a batch.
  const one: EventHandler<CountedEvent> = (em, event, ctx) => countEvents(em, [event], target, context(ctx.log, ctx.afterCommit));
  return defineConsumer({
    consumer,
    handlers: { OrderPlaced: one, OrderConfirmed: one, OrderCancelled: one, OrderRejected: one, PaymentRefunded: one } satisfies Record<
      CountedEventType,
      unknown
    >,
    applyBatch: (em, events, ctx) => countEvents(em, events as readonly CountedEvent[], target, context(ctx.log, ctx.afterCommit)),
    ...options,
  });
}

/** The live consumer: counts into every generation CURRENT or FOLLOWING, and announces the CURRENT one's changes. */
export function salesConsumer(runtime: Pick<ServiceRuntime, 'redis' | 'config' | 'log'>, instruments: CountingInstruments = {}): ConsumerSpec {
  return countingConsumer(SALES_CONSUMER, { kind: 'live' }, runtime, instruments);
}

/** A rebuild's consumer: counts into `generation` only, while it is BUILDING or FOLLOWING; it never announces. */
export function rebuildConsumer(runtime: Pick<ServiceRuntime, 'redis' | 'config' | 'log'>, generation: number): ConsumerSpec {
  // Larger transactions: a rebuild reads a backlog, and nobody waits on a single event.
  return countingConsumer(rebuildConsumerName(generation), { kind: 'rebuild', generation }, runtime, {}, { maxBatchSize: 500 });
}
