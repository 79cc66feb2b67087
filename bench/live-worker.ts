/**
 * A client process started by bench/live.ts: graphql-ws clients (each its own WebSocket, from the
 * `ws` package), each with one `stockLevelChanged(skus: [its sku])` subscription, as a storefront
 * page watching one product would have. It notes when every message arrives and sends the notes
 * to the bench in batches; it does no statistics itself. Not run directly.
 *
 * Clients never reconnect (retryAttempts 0): a client the gateway closes stays closed, and the
 * bench counts what it missed.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { type ClientEvent, type ConnectRequest, type LiveWorkerReply, type LiveWorkerRequest, epochNow, subscriptionQuery } from './live-protocol.ts';

if (!process.send) {
  console.error('bench/live-worker.ts is started by bench/live.ts, not directly');
  process.exit(2);
}

/** Receipts are sent to the bench this often, or sooner when this many have piled up. */
const FLUSH_EVERY_MS = 200;
const FLUSH_AT = 16_384;

interface LiveClient {
  readonly id: number;
  readonly sku: string;
  readonly client: Client;
  unsubscribe: (() => void) | null;
  subscribed: boolean;
  ended: boolean;
}

const clients: LiveClient[] = [];
let receipts = { client: new Int32Array(FLUSH_AT), version: new Float64Array(FLUSH_AT), at: new Float64Array(FLUSH_AT), n: 0 };
let events: ClientEvent[] = [];
let closing = false;

function flush(): void {
  if (receipts.n > 0) {
    const { client, version, at, n } = receipts;
    receipts = { client: new Int32Array(FLUSH_AT), version: new Float64Array(FLUSH_AT), at: new Float64Array(FLUSH_AT), n: 0 };
    process.send!({ type: 'receipts', receipts: { client: client.slice(0, n), version: version.slice(0, n), at: at.slice(0, n) } } satisfies LiveWorkerReply);
  }
  if (events.length > 0) {
    process.send!({ type: 'events', events } satisfies LiveWorkerReply);
    events = [];
  }
}
const flusher = setInterval(flush, FLUSH_EVERY_MS);

function event(client: number, kind: ClientEvent['kind'], detail: string): void {
  if (closing && kind !== 'bad-message') return;
  events.push({ client, at: epochNow(), kind, detail: detail.slice(0, 300) });
}

function describe(error: unknown): string {
  if (Array.isArray(error)) return `GraphQL errors: ${JSON.stringify(error).slice(0, 250)}`;
  if (error instanceof Error) return error.message;
  // graphql-ws reports a closed socket as its CloseEvent.
  const close = error as { code?: number; reason?: string; type?: string; message?: string };
  if (typeof close?.code === 'number') return `socket closed ${close.code}${close.reason ? ` ${close.reason}` : ''}`;
  if (close?.type === 'error') return `socket error${close.message ? `: ${close.message}` : ''}`;
  return String(error);
}

/** Starts one client's subscription; resolves with whether its first message arrived in time. */
function subscribe(request: ConnectRequest, id: number, sku: string, query: string, wantName: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (ok: boolean, why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!ok) {
        event(id, 'failed', why ?? 'failed');
        live.ended = true;
        live.unsubscribe?.();
        void client.dispose();
      }
      resolve(ok);
    };
    const client = createClient({
      url: request.url,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      on: {
        closed: (closeEvent) => {
          if (live.subscribed && !live.ended) event(id, 'closed', describe(closeEvent));
        },
      },
    });
    const live: LiveClient = { id, sku, client, unsubscribe: null, subscribed: false, ended: false };
    clients.push(live);
    const timer = setTimeout(() => settle(false, `no first message within ${request.timeoutMs} ms`), request.timeoutMs);
    live.unsubscribe = client.subscribe<{ stockLevelChanged?: { sku?: string; version?: number; product?: { name?: string } | null } }>(
      { query, variables: { skus: [sku] }, operationName: 'LiveStock' },
      {
        next: (message) => {
          const at = epochNow();
          const level = message.data?.stockLevelChanged;
          const problem = message.errors?.length
            ? `GraphQL errors: ${JSON.stringify(message.errors).slice(0, 250)}`
            : !level || typeof level.version !== 'number'
              ? 'no stockLevelChanged.version in the message'
              : level.sku !== sku
                ? `a message for ${level.sku}, subscribed to ${sku}`
                : wantName && !level.product?.name
                  ? 'no product name in the message'
                  : null;
          if (problem !== null) {
            if (!live.subscribed) return settle(false, problem);
            event(id, 'bad-message', problem);
            // A later message that carries its version still counts as delivered; the problem is reported apart.
            if (typeof level?.version !== 'number' || level.sku !== sku) return;
          }
          const n = receipts.n++;
          receipts.client[n] = id;
          receipts.version[n] = level!.version!;
          receipts.at[n] = at;
          if (receipts.n === FLUSH_AT) flush();
          if (!live.subscribed) {
            live.subscribed = true;
            settle(true);
          }
        },
        error: (error) => {
          if (live.ended) return;
          live.ended = true;
          if (!live.subscribed) settle(false, describe(error));
          else event(id, 'error', describe(error));
        },
        complete: () => {
          if (live.ended || closing) return;
          live.ended = true;
          if (!live.subscribed) settle(false, 'completed before its first message');
          else event(id, 'complete', 'the server completed the subscription');
        },
      },
    );
  });
}

async function connect(request: ConnectRequest): Promise<void> {
  const query = subscriptionQuery(request.selection);
  const wantName = request.selection === 'full';
  let next = 0,
    subscribed = 0,
    failed = 0;
  const progress = setInterval(() => process.send!({ type: 'progress', subscribed, failed } satisfies LiveWorkerReply), 1_000);
  const lane = async () => {
    while (next < request.clients.length) {
      const i = next++;
      if (await subscribe(request, request.clients[i], request.skus[i], query, wantName)) subscribed += 1;
      else failed += 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(request.concurrency, request.clients.length) }, lane));
  } finally {
    clearInterval(progress);
  }
  flush();
  process.send!({ type: 'connected', subscribed, failed } satisfies LiveWorkerReply);
}

async function closeAll(): Promise<void> {
  flush();
  closing = true;
  for (const live of clients) {
    live.ended = true;
    live.unsubscribe?.();
  }
  await Promise.allSettled(clients.map(async (live) => live.client.dispose()));
  clients.length = 0;
  flush();
}

process.on('message', (message: LiveWorkerRequest) => {
  if (message.type === 'exit') {
    clearInterval(flusher);
    process.exit(0);
  } else if (message.type === 'connect') {
    connect(message.connect).catch((error) => process.send!({ type: 'failed', error: (error as Error).stack ?? String(error) } satisfies LiveWorkerReply));
  } else if (message.type === 'close') {
    closeAll().then(
      () => process.send!({ type: 'closed' } satisfies LiveWorkerReply),
      (error) => process.send!({ type: 'failed', error: (error as Error).message } satisfies LiveWorkerReply),
    );
  }
});
// Ctrl-C reaches the whole process group: the bench decides when clients close.
process.on('SIGINT', () => {});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', pid: process.pid } satisfies LiveWorkerReply);
