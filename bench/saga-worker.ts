/**
 * The customer process started by bench/saga.ts: closed-loop customers, each with its own token
 * and its own keep-alive socket, placing one-line orders for random skus as fast as the API
 * answers (the same node:http client as bench/load-worker.ts, but every request has its own body:
 * a fresh idempotency key and a random sku). Not run directly.
 */
import http from 'node:http';
import { post } from './lib.ts';
import {
  PLACE_ORDER, placeOrderInput, readPlaceOrder, seedSku,
  type FailedPlacement, type PlacedOrder, type SagaRunRequest, type SagaRunResult, type SagaWorkerReply, type SagaWorkerRequest,
} from './saga-protocol.ts';

if (!process.send) {
  console.error('bench/saga-worker.ts is started by bench/saga.ts, not directly');
  process.exit(2);
}

let stopRequested = false;

async function run(request: SagaRunRequest): Promise<SagaRunResult> {
  const url = new URL(request.url);
  const placed: PlacedOrder[] = [];
  const failed: FailedPlacement[] = [];
  const started = performance.now();
  const deadline = started + request.durationMs;
  const progress = setInterval(() => {
    process.send!({ type: 'progress', placed: placed.length, failed: failed.length, elapsedMs: performance.now() - started } satisfies SagaWorkerReply);
  }, 1_000);

  const customer = async (n: number) => {
    // One socket per customer, kept alive: a customer is one browser session.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    const token = request.tokens[n - 1];
    let seq = 0;
    try {
      while (!stopRequested && performance.now() < deadline) {
        seq += 1;
        const sku = seedSku(1 + Math.floor(Math.random() * request.skus));
        const idempotencyKey = `${request.keyPrefix}-c${n}-${seq}`;
        const body = Buffer.from(JSON.stringify({
          operationName: 'PlaceOrder',
          query: PLACE_ORDER,
          variables: { input: placeOrderInput(n, idempotencyKey, sku, request.quantity, request.paymentMethod) },
        }));
        const t0 = performance.now();
        let outcome: ReturnType<typeof readPlaceOrder>;
        try {
          const { status, text } = await post(url, agent, body, { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}`, 'content-length': body.byteLength });
          outcome = readPlaceOrder(status, text);
        } catch (error) {
          outcome = { code: 'NETWORK', error: `NETWORK: ${(error as Error).message}` };
        }
        const latencyMs = performance.now() - t0;
        if ('order' in outcome) {
          placed.push({ id: outcome.order.id, customer: n, sku, quantity: request.quantity, idempotencyKey, latencyMs, respondedAt: Date.now(), status: outcome.order.status });
        } else {
          failed.push({ customer: n, sku, quantity: request.quantity, idempotencyKey, latencyMs, error: outcome.error, code: outcome.code });
          // A customer told the shop is busy comes back when asked (as the SDK does), not at once.
          if (outcome.code === 'OVERLOADED' || outcome.code === 'RATE_LIMITED') await new Promise((r) => setTimeout(r, 1000 * (outcome.retryAfterSeconds ?? 1)));
          // A stack that refuses everything would otherwise be hammered in a tight loop.
          else if (outcome.code === 'NETWORK' || outcome.code.startsWith('HTTP')) await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      agent.destroy();
    }
  };
  try {
    await Promise.all(Array.from({ length: request.tokens.length }, (_, i) => customer(i + 1)));
  } finally {
    clearInterval(progress);
  }
  return { placed, failed, elapsedMs: performance.now() - started };
}

process.on('message', (message: SagaWorkerRequest) => {
  if (message.type === 'exit') process.exit(0);
  if (message.type === 'stop') stopRequested = true;
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
