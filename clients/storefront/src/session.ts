/**
 * Who is signed in. Development sign-in asks the storefront server's `/dev/token` for a token of a
 * demo user: a customer, or the admin who sees the sales dashboard (the browser cannot sign one:
 * the secret stays on the server). The session lives in localStorage so every tab of the shop
 * shares it.
 */
export { DEMO_USER_NAMES } from './demo-users.ts';

/** A signed-in user, the roles their token carries, and the bearer token. */
export interface Session {
  readonly user: string;
  readonly roles: readonly string[];
  readonly token: string;
}

const KEY = 'swiftcart.session';
const listeners = new Set<() => void>();

/** A stored session; one an earlier version of the page stored (`customer`, no roles) is a customer's. */
function parseSession(raw: string): Session | null {
  const stored = JSON.parse(raw) as { user?: unknown; customer?: unknown; roles?: unknown; token?: unknown } | null;
  const user = stored?.user ?? stored?.customer;
  if (typeof user !== 'string' || typeof stored?.token !== 'string') return null;
  const roles = Array.isArray(stored.roles) ? stored.roles.filter((role): role is string => typeof role === 'string') : ['customer'];
  return { user, roles, token: stored.token };
}

/** The current session, or null when signed out. */
export function currentSession(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? parseSession(raw) : null;
  } catch {
    return null;
  }
}

/** Whether the signed-in user's token carries the admin role (the sales dashboard's audience). */
export function isAdmin(session: Session | null = currentSession()): boolean {
  return session?.roles.includes('admin') ?? false;
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

/** Signs in as a demo user; throws an Error with a readable message when the server refuses. */
export async function signIn(user: string): Promise<Session> {
  let response: Response;
  try {
    response = await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) });
  } catch {
    throw new Error('The shop cannot be reached right now; sign-in failed.');
  }
  if (response.status === 404) throw new Error('Development sign-in is not available on this server.');
  const body = (await response.json().catch(() => ({}))) as { token?: string; roles?: string[]; error?: string };
  if (!response.ok || !body.token) throw new Error(`Sign-in failed: ${body.error ?? response.statusText}`);
  const session: Session = { user, roles: body.roles ?? [], token: body.token };
  localStorage.setItem(KEY, JSON.stringify(session));
  changed();
  return session;
}

/** Forgets the session. */
export function signOut(): void {
  localStorage.removeItem(KEY);
  changed();
}
