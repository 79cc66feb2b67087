/**
 * Which web pages may talk to the gateway from a browser. Browsers send `Origin` with WebSocket
 * upgrades and with cross-origin (and same-origin POST) requests; a page elsewhere could otherwise
 * use a visitor's browser, and its network position, against the gateway. Requests without
 * `Origin` (curl, servers, mobile apps) are not browsers' and are not affected.
 *
 * Allowed: the gateway's own origin (the host and port it is bound to, with `localhost`,
 * `127.0.0.1` and `[::1]` when it listens on a loopback or wildcard address), the origin of
 * `PUBLIC_GATEWAY_URL`, and `ALLOWED_ORIGINS`. A page's `Host` header is not trusted for this: a
 * DNS-rebinding page names its own host there.
 */
import type { Config } from '@swiftcart/platform/config';
import { commaList, invalid, parseSettings, setting, z } from '@swiftcart/platform/settings';

/** The environment variable of the allow-list. */
export const ALLOWED_ORIGINS = 'ALLOWED_ORIGINS';

/** `ALLOWED_ORIGINS`, declared here and part of the gateway's settings (settings.ts). */
export const originSettings = z.object({
  [ALLOWED_ORIGINS]: setting(
    (raw) =>
      commaList(raw).map((entry) => {
        let url: URL;
        try {
          url = new URL(entry);
        } catch {
          return invalid(`entries must be origins such as https://shop.example.com, got "${entry}"`);
        }
        if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
          invalid(`entries must be origins (scheme, host and port only) such as https://shop.example.com, got "${entry}"`);
        }
        return url.origin;
      }),
    { default: "none (`npm start` adds the storefront's)", accepts: 'comma-separated origins: scheme, host and port' },
  ).describe("origins whose pages may call the gateway from a browser, with CORS; the gateway's own origin and `PUBLIC_GATEWAY_URL`'s are always accepted"),
});

/**
 * Reads `ALLOWED_ORIGINS`: comma-separated origins such as `https://shop.example.com,http://127.0.0.1:5173`.
 * `settings` defaults to those parsed from `config.vars`.
 */
export function allowedOrigins(
  config: Pick<Config, 'vars'>,
  settings: z.output<typeof originSettings> = parseSettings(originSettings, config.vars),
): readonly string[] {
  return settings[ALLOWED_ORIGINS];
}

const LOOPBACK_OR_ANY = new Set(['127.0.0.1', 'localhost', '::1', '0.0.0.0', '::', '']);

/** Decides whether a request's `Origin` may use the gateway. */
export class OriginPolicy {
  readonly #host: string;
  readonly #port: () => number;
  readonly #fixed: ReadonlySet<string>;
  readonly #listed: ReadonlySet<string>;
  #own: { port: number; origins: ReadonlySet<string> } | null = null;

  /**
   * `port` is asked for lazily: the gateway knows it only once bound (port 0 in tests).
   * `publicUrl` is PUBLIC_GATEWAY_URL, `allowed` the parsed {@link allowedOrigins}.
   */
  constructor(options: { host: string; port: () => number; publicUrl?: string; allowed: readonly string[] }) {
    this.#host = options.host;
    this.#port = options.port;
    this.#listed = new Set(options.allowed);
    this.#fixed = new Set([...options.allowed, ...(options.publicUrl ? [new URL(options.publicUrl).origin] : [])]);
  }

  #ownOrigins(): ReadonlySet<string> {
    const port = this.#port();
    if (this.#own?.port === port) return this.#own.origins;
    const hosts = LOOPBACK_OR_ANY.has(this.#host) ? ['127.0.0.1', 'localhost', '[::1]'] : [this.#host.includes(':') ? `[${this.#host}]` : this.#host];
    const origins = new Set(hosts.map((host) => new URL(`http://${host}:${port}`).origin));
    this.#own = { port, origins };
    return origins;
  }

  /** Whether a request carrying `Origin: origin` is accepted. */
  allows(origin: string): boolean {
    let normalized: string;
    try {
      // "null" (sandboxed frames, file: pages) and anything unparsable are never allowed.
      normalized = new URL(origin).origin;
    } catch {
      return false;
    }
    if (normalized === 'null') return false;
    return this.#fixed.has(normalized) || this.#ownOrigins().has(normalized);
  }

  /**
   * Whether `origin` is in the allow-list, so that its pages may read responses: the gateway
   * answers it with CORS headers. The gateway's own pages need none.
   */
  isListed(origin: string): boolean {
    try {
      return this.#listed.has(new URL(origin).origin);
    } catch {
      return false;
    }
  }
}
