/**
 * The one SDK client of the page. It talks to `/graphql` on the page's own origin: the storefront
 * server proxies it (and its WebSocket) to the gateway, so no CORS is involved.
 */
import { type BusyNotice, createClient } from '@swiftcart/sdk';
import { currentToken } from './session.ts';

const busyListeners = new Set<(notice: BusyNotice) => void>();

/** Calls `listener` before each retry of a request the shop refused as busy; returns the unsubscribe. */
export function onBusy(listener: (notice: BusyNotice) => void): () => void {
  busyListeners.add(listener);
  return () => busyListeners.delete(listener);
}

/**
 * The shared client; the token is read before every request, so sign-in and sign-out apply at once.
 * A request the shop refuses as busy (OVERLOADED, RATE_LIMITED) is retried by the SDK with backoff.
 */
export const client = createClient({
  url: new URL('/graphql', location.href).href,
  token: currentToken,
  onBusy: (notice) => {
    for (const listener of busyListeners) listener(notice);
  },
});
