/**
 * Calls spread over a service's replicas (`ORDER_URL=http://a/graphql,http://b/graphql`, as
 * `npm start -- --replicas N` sets them): round robin, and a replica that refuses the connection is
 * tried last for a while. Only a refused connection fails over: the request never reached a
 * process, so even a mutation is safe to send again. The gateway (gateway/src/replicas.ts) and the
 * services that call a peer (platform/src/peer.ts) spread their calls with it. See ADR 0014.
 */

/** How long a replica that refused a connection is tried last. */
export const REFUSED_REPLICA_PAUSE_MS = 2_000;

/** The error codes that prove a request was not delivered. */
const NOT_DELIVERED = new Set(['ECONNREFUSED']);

/** Whether `error` (or its cause, as the keep-alive fetcher wraps it) says nothing was sent. */
export function notDelivered(error: unknown): boolean {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && NOT_DELIVERED.has(e.code)) return true;
  }
  return false;
}

/** The replicas of one subgraph and whom to ask next. */
export class ReplicaSet {
  readonly urls: readonly string[];
  readonly #pausedUntil: number[];
  readonly #now: () => number;
  #next = 0;

  constructor(urls: readonly string[], now: () => number = Date.now) {
    if (urls.length === 0) throw new Error('a replica set needs at least one URL');
    this.urls = urls;
    this.#pausedUntil = urls.map(() => 0);
    this.#now = now;
  }

  /** Every replica once, in the order to try them for one call: the next in turn first, paused ones last. */
  order(): number[] {
    const start = this.#next;
    this.#next = (this.#next + 1) % this.urls.length;
    const now = this.#now();
    const turn = this.urls.map((_, i) => (start + i) % this.urls.length);
    return [...turn.filter((i) => this.#pausedUntil[i] <= now), ...turn.filter((i) => this.#pausedUntil[i] > now)];
  }

  /** Tries `index` last until the pause is over. */
  refused(index: number): void {
    this.#pausedUntil[index] = this.#now() + REFUSED_REPLICA_PAUSE_MS;
  }
}
