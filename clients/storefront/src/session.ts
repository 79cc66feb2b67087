/**
 * Who is signed in. Development sign-in asks the storefront server's `/dev/token` for a token of a
 * demo customer (the browser cannot sign one: the secret stays on the server). The session lives
 * in localStorage so every tab of the shop shares it.
 */

/** The demo customers the development sign-in offers (server.ts accepts the same list). */
export const DEMO_CUSTOMERS = ['alice', 'bob', 'carol'] as const;

/** A signed-in customer and their bearer token. */
export interface Session {
  readonly customer: string;
  readonly token: string;
}

const KEY = 'swiftcart.session';
const listeners = new Set<() => void>();

/** The current session, or null when signed out. */
export function currentSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

/** The bearer token for the SDK's `token` option: asked before every request. */
export const currentToken = (): string | null => currentSession()?.token ?? null;

/** Calls `listener` after every sign-in and sign-out (also from another tab). */
export function onSessionChange(listener: () => void): void {
  listeners.add(listener);
}

function changed(): void {
  for (const listener of listeners) listener();
}

window.addEventListener('storage', (event) => {
  if (event.key === KEY) changed();
});

/** Signs in as a demo customer; throws an Error with a readable message when the server refuses. */
export async function signIn(customer: string): Promise<Session> {
  let response: Response;
  try {
    response = await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ customer }) });
  } catch {
    throw new Error('The shop cannot be reached right now; sign-in failed.');
  }
  if (response.status === 404) throw new Error('Development sign-in is not available on this server.');
  const body = (await response.json().catch(() => ({}))) as { token?: string; error?: string };
  if (!response.ok || !body.token) throw new Error(`Sign-in failed: ${body.error ?? response.statusText}`);
  const session = { customer, token: body.token };
  localStorage.setItem(KEY, JSON.stringify(session));
  changed();
  return session;
}

/** Forgets the session. */
export function signOut(): void {
  localStorage.removeItem(KEY);
  changed();
}
