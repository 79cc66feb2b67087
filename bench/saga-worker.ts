/**
 * The customer process started by bench/saga.ts. Customers, each with its own token, place one-line
 * orders for random skus (the same node:http client as bench/load-worker.ts, but every request has
 * its own body: a fresh idempotency key and a random sku), in one of two ways:
 *
 * - closed loop: each customer places its next order as soon as the previous one is answered, over
 *   its own keep-alive socket (a customer is one browser session);
 * - open loop (`ratePerSecond`): placements start on a schedule, `ratePerSecond` a second, handed to
 *   the customers in turn, whether or not earlier ones have been answered, over one keep-alive pool
 *   of up to OPEN_LOOP_MAX_IN_FLIGHT sockets. A start that finds that many in flight waits for one to
 *   end; one that begins more than LATE_START_MS after its time counts as late.
 *
 * Not run directly.
 */
import http from 'node:http';
import { sleep } from '../platform/src/resilience.ts';
import { post } from './lib.ts';
import {
  BUSY_CODES,
  LATE_START_MS,
  OPEN_LOOP_MAX_IN_FLIGHT,
  PLACE_ORDER,
  placeOrderInput,
  readPlaceOrder,
  seedSku,
  type FailedPlacement,
  type OpenLoopSchedule,
  type PlacedOrder,
  type SagaRunRequest,
  type SagaRunResult,
  type SagaWorkerReply,
  type SagaWorkerRequest,
} from './saga-protocol.ts';

if (!process.send) {
  console.error('bench/saga-worker.ts is started by bench/saga.ts, not directly');
  process.exit(2);
}

/** Aborted by a 'stop' message: placing ends, and the open loop's wait for its next start ends early. Each run gets a fresh one. */
let stop = new AbortController();

async function run(request: SagaRunRequest): Promise<SagaRunResult> {
  stop = new AbortController();
  const { signal } = stop;
  const url = new URL(request.url);
  // Once per run rather than per request: the skus to pick from and each customer's header.
  const skus = Array.from({ length: request.skus }, (_, i) => seedSku(i + 1));
  const authorizations = request.tokens.map((token) => `Bearer ${token}`);
  const placed: PlacedOrder[] = [];
  const failed: FailedPlacement[] = [];
  let inFlight = 0;
  const cpuAtStart = process.cpuUsage();
  const started = performance.now();
  const deadline = started + request.durationMs;
  const progress = setInterval(() => {
    process.send!({
      type: 'progress',
      placed: placed.length,
      failed: failed.length,
      inFlight,
      elapsedMs: performance.now() - started,
    } satisfies SagaWorkerReply);
  }, 1_000);

  /** One placeOrder by customer `n`; records the order or the failure, and returns the failure's code and retry delay. */
  const place = async (n: number, seq: number, agent: http.Agent) => {
    const sku = skus[Math.floor(Math.random() * skus.length)];
    const idempotencyKey = `${request.keyPrefix}-c${n}-${seq}`;
    const body = Buffer.from(
      JSON.stringify({
        operationName: 'PlaceOrder',
        query: PLACE_ORDER,
        variables: { input: placeOrderInput(n, idempotencyKey, sku, request.quantity, request.paymentMethod) },
      }),
    );
    const t0 = performance.now();
    let outcome: ReturnType<typeof readPlaceOrder>;
    inFlight++;
    try {
      const { status, text } = await post(url, agent, body, {
        'content-type': 'application/json',
        accept: 'application/json',
        authorization: authorizations[n - 1],
        'content-length': body.byteLength,
      });
      outcome = readPlaceOrder(status, text);
    } catch (error) {
      outcome = { code: 'NETWORK', error: `NETWORK: ${(error as Error).message}` };
    } finally {
      inFlight--;
    }
    const latencyMs = performance.now() - t0;
    if ('order' in outcome) {
      placed.push({
        id: outcome.order.id,
        customer: n,
        sku,
        quantity: request.quantity,
        idempotencyKey,
        latencyMs,
        respondedAt: Date.now(),
        status: outcome.order.status,
      });
      return null;
    }
    failed.push({ customer: n, sku, quantity: request.quantity, idempotencyKey, latencyMs, error: outcome.error, code: outcome.code });
    return outcome;
  };

  const customer = async (n: number) => {
    // One socket per customer, kept alive: a customer is one browser session.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    let seq = 0;
    try {
      while (!signal.aborted && performance.now() < deadline) {
        const refusal = await place(n, ++seq, agent);
        if (!refusal) continue;
        // A customer told the shop is busy comes back when asked (as the SDK does), not at once.
        if (BUSY_CODES.has(refusal.code)) await sleep(1000 * (refusal.retryAfterSeconds ?? 1));
        // A stack that refuses everything would otherwise be hammered in a tight loop.
        else if (refusal.code === 'NETWORK' || refusal.code.startsWith('HTTP')) await sleep(50);
      }
    } finally {
      agent.destroy();
    }
  };

  const openLoop = async (ratePerSecond: number): Promise<OpenLoopSchedule> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: OPEN_LOOP_MAX_IN_FLIGHT, maxFreeSockets: OPEN_LOOP_MAX_IN_FLIGHT });
    const customers = request.tokens.length;
    const seqs = new Array<number>(customers).fill(0);
    const running = new Set<Promise<unknown>>();
    /** Wakes a start that waits for a free slot (one wake per placement that ends, not a Promise.race over all in flight). */
    let slotFreed: (() => void) | null = null;
    let k = 0,
      lateStarts = 0,
      maxStartLagMs = 0,
      peakInFlight = 0;
    try {
      for (; !signal.aborted; k++) {
        const due = started + (k * 1000) / ratePerSecond;
        if (due >= deadline) break;
        if (due > performance.now()) await sleep(due - performance.now(), signal).catch(() => {});
        while (!signal.aborted && running.size >= OPEN_LOOP_MAX_IN_FLIGHT)
          await new Promise<void>((resolve) => {
            slotFreed = resolve;
          });
        if (signal.aborted || performance.now() >= deadline) break;
        const lag = performance.now() - due;
        if (lag > LATE_START_MS) lateStarts++;
        maxStartLagMs = Math.max(maxStartLagMs, lag);
        const n = 1 + (k % customers);
        const placement = place(n, ++seqs[n - 1], agent).finally(() => {
          running.delete(placement);
          slotFreed?.();
          slotFreed = null;
        });
        running.add(placement);
        peakInFlight = Math.max(peakInFlight, running.size);
      }
      // The window: the whole duration, or until placing was stopped. Scheduled: every start due
      // within it, whether or not it could start.
      const windowMs = signal.aborted ? Math.min(performance.now(), deadline) - started : request.durationMs;
      const scheduled = Math.ceil((windowMs * ratePerSecond) / 1000);
      await Promise.all(running);
      return { windowMs, scheduled, started: k, lateStarts, maxStartLagMs, peakInFlight };
    } finally {
      agent.destroy();
    }
  };

  let schedule: OpenLoopSchedule | undefined;
  try {
    if (request.ratePerSecond !== undefined) schedule = await openLoop(request.ratePerSecond);
    else await Promise.all(Array.from({ length: request.tokens.length }, (_, i) => customer(i + 1)));
  } finally {
    clearInterval(progress);
  }
  const cpu = process.cpuUsage(cpuAtStart);
  return { placed, failed, elapsedMs: performance.now() - started, clientCpuSeconds: (cpu.user + cpu.system) / 1e6, ...(schedule ? { schedule } : {}) };
}

process.on('message', (message: SagaWorkerRequest) => {
  if (message.type === 'exit') process.exit(0);
  if (message.type === 'stop') stop.abort();
  if (message.type === 'run') {
    run(message.run).then(
      (result) => process.send!({ type: 'result', result } satisfies SagaWorkerReply),
      (error) => process.send!({ type: 'failed', error: (error as Error).stack ?? String(error) } satisfies SagaWorkerReply),
    );
  }
});
// Ctrl-C reaches the whole process group: the bench decides when placing ends, not the signal.
process.on('SIGINT', () => {});
// The parent going away ends the worker too.
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready' } satisfies SagaWorkerReply);
