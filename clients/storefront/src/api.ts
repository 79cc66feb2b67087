/**
 * The one SDK client of the page. It talks to `/graphql` on the page's own origin: the storefront
 * server proxies it (and its WebSocket) to the gateway, so no CORS is involved.
 */
import { createClient } from '@swiftcart/sdk';
import { currentToken } from './session.ts';

/** The shared client; the token is read before every request, so sign-in and sign-out apply at once. */
export const client = createClient({ url: new URL('/graphql', location.href).href, token: currentToken });
