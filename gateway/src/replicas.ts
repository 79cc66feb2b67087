/**
 * Subgraph calls spread over a service's replicas (`ORDER_URL=http://a/graphql,http://b/graphql`,
 * as `npm start -- --replicas N` sets them): round robin, and a replica that refuses the connection
 * is skipped for a while and the call goes to the next one. Only a refused connection fails over:
 * the request never reached a process, so even a mutation is safe to send again. A request that
 * reached a replica and then failed is the caller's error, as with one replica.
 *
 * In Kubernetes one Service URL per subgraph does this (kube-proxy spreads, readiness probes take
 * dead pods out); this is for replicas started side by side without a proxy. See ADR 0014.
 */
import { ReplicaSet, notDelivered } from '@swiftcart/platform/replicas';
import type { Fetcher } from './fetcher.ts';

export { REFUSED_REPLICA_PAUSE_MS, ReplicaSet, notDelivered } from '@swiftcart/platform/replicas';

/**
 * Wraps `fetcher` so that a call to the first URL of a replica set goes to the replicas in turn,
 * failing over on a refused connection. Calls to other URLs pass through. `sets` is read at each
 * call: the gateway fills it while it builds its data sources, after it made the fetcher.
 */
export function spreadingFetcher(fetcher: Fetcher, sets: ReadonlyMap<string, ReplicaSet>): Fetcher {
  return async (url, init) => {
    const set = sets.get(url);
    if (!set || set.urls.length === 1) return fetcher(url, init);
    let lastError: unknown;
    for (const index of set.order()) {
      try {
        return await fetcher(set.urls[index], init);
      } catch (error) {
        if (!notDelivered(error)) throw error;
        set.refused(index);
        lastError = error;
      }
    }
    throw lastError;
  };
}
