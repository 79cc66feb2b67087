/**
 * Where the SDK gets the caller's token: a fixed string, or a function asked before every request
 * and every new subscription, so a storefront can sign in and out without a new client.
 */

/** No token: the anonymous viewer. */
export type NoToken = null | undefined;

/** A token, or a function returning the current one (possibly asynchronously, e.g. after a refresh). */
export type TokenSource = string | NoToken | (() => string | NoToken | Promise<string | NoToken>);

/** The current token of `source`; an empty string counts as none. */
export async function resolveToken(source: TokenSource): Promise<string | null> {
  const token = typeof source === 'function' ? await source() : source;
  return token ? token : null;
}
