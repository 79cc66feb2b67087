/**
 * The gateway's door: what every HTTP request and WebSocket upgrade passes before Apollo or
 * graphql-ws sees it (docs/security.md).
 *
 * - `Origin` ({@link OriginPolicy}): a browser request or upgrade from a page that is neither the
 *   gateway's own nor allowed gets 403 FORBIDDEN_ORIGIN. Pages of `ALLOWED_ORIGINS` also get CORS
 *   headers, so they can read the answers.
 * - Rate limits ({@link EdgeRateLimits}), unless `EDGE_LIMITS=off`: GraphQL operations on
 *   `/graphql` (not the probes, metrics or the landing page) per token subject or client address,
 *   HTTP 429 with `Retry-After`; upgrades per address and open sockets per address, 429 with
 *   `Retry-After`; open sockets per token subject once `connection_init` names it, close code
 *   {@link RATE_LIMITED_CLOSE_CODE}; subscriptions per window and per socket, a graphql-ws error
 *   with `extensions.code` RATE_LIMITED.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { BlockList } from 'node:net';
import { GraphQLError } from 'graphql';
import { type VerificationSecrets, type Viewer, viewerFromAuthorization } from '@swiftcart/platform/auth';
import { ErrorCode } from '@swiftcart/platform/errors';
import { PATHS, authorizationOf, sendJson } from '@swiftcart/platform/http';
import type { Logger } from '@swiftcart/platform/logger';
import type { OriginPolicy } from './origins.ts';
import {
  type ClientKey,
  type EdgeRateLimits,
  type Refusal,
  type SocketLease,
  CAP_RETRY_AFTER_SECONDS,
  addressClient,
  clientAddress,
  subjectClient,
} from './rate-limits.ts';

/**
 * graphql-ws close code for a socket refused after `connection_init` because its token subject
 * has {@link RateLimitSettings.maxSocketsPerClient} open already; the reason starts with
 * `RATE_LIMITED:`. graphql-ws clients do not retry it by themselves.
 */
export const RATE_LIMITED_CLOSE_CODE = 4429;

/** Request headers a page of `ALLOWED_ORIGINS` may send (CORS preflight). */
const CORS_ALLOWED_HEADERS =
  'authorization, content-type, apollo-require-preflight, x-apollo-operation-name, apollographql-client-name, apollographql-client-version';
/** How long a browser may cache a preflight answer. */
const CORS_MAX_AGE_SECONDS = '600';

/** What the edge needs. */
export interface EdgeOptions {
  readonly origins: OriginPolicy;
  /** Null when `EDGE_LIMITS=off`: origins are still checked, nothing is counted. */
  readonly limits: EdgeRateLimits | null;
  /** `TRUSTED_PROXIES`: whose `X-Forwarded-For` names the client. */
  readonly trustedProxies: BlockList | null;
  /** The secrets a token may be signed with (`Config.acceptedJwtSecrets`). */
  readonly jwtSecret: VerificationSecrets;
  readonly log: Logger;
}

/** A WebSocket's client, from its upgrade on: the address first, the token subject once known. */
interface Admission {
  client: ClientKey;
  lease: SocketLease | null;
  closed: boolean;
}

/** The body of every refusal: a GraphQL response with one error. */
function errorBody(message: string, extensions: Record<string, unknown>): string {
  return JSON.stringify({ errors: [{ message, extensions }] });
}

function rateLimitedExtensions(refusal: Refusal): Record<string, unknown> {
  return { code: ErrorCode.RateLimited, retryAfterSeconds: refusal.retryAfterSeconds, limit: refusal.limit };
}

/** The graphql-ws error for a refused operation: RATE_LIMITED, with `retryAfterSeconds` and `limit`. */
export function rateLimitedError(refusal: Refusal): GraphQLError {
  return new GraphQLError(refusal.message, { extensions: rateLimitedExtensions(refusal) });
}

/** The refusal of the (N+1)th subscription on one socket. */
export function subscriptionsPerSocketRefusal(max: number): Refusal {
  return {
    message: `Too many subscriptions on this connection: at most ${max}`,
    retryAfterSeconds: CAP_RETRY_AFTER_SECONDS,
    limit: 'MAX_SUBSCRIPTIONS_PER_SOCKET',
  };
}

/** Whether `req` asks for a GraphQL operation (and so is counted), not a probe, page or preflight. */
function isOperation(req: IncomingMessage): boolean {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  if ((query === -1 ? url : url.slice(0, query)) !== PATHS.graphql) return false;
  // GET /graphql without a query string is the landing page (Sandbox), not an operation.
  return req.method === 'POST' || (req.method === 'GET' && query !== -1 && query < url.length - 1);
}

/** Origin checks and rate limits for one gateway. */
export class Edge {
  readonly #options: EdgeOptions;
  readonly #viewers = new WeakMap<IncomingMessage, Promise<Viewer>>();
  readonly #admissions = new WeakMap<IncomingMessage, Admission>();

  constructor(options: EdgeOptions) {
    this.#options = options;
  }

  /** Subscriptions one socket may hold open at once; Infinity when `EDGE_LIMITS=off`. */
  get maxSubscriptionsPerSocket(): number {
    return this.#options.limits?.settings.maxSubscriptionsPerSocket ?? Number.POSITIVE_INFINITY;
  }

  /**
   * The caller of an HTTP request, its token verified once per request (the rate limit and the
   * GraphQL context share it). Rejects with UNAUTHENTICATED for an invalid token.
   */
  viewerOf(req: IncomingMessage): Promise<Viewer> {
    let viewer = this.#viewers.get(req);
    if (!viewer) {
      viewer = viewerFromAuthorization(authorizationOf(req), this.#options.jwtSecret);
      this.#viewers.set(req, viewer);
    }
    return viewer;
  }

  /** Wraps the gateway's HTTP handler with the origin check, CORS for allowed pages and the operation rate limit. */
  http(next: (req: IncomingMessage, res: ServerResponse) => unknown): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const origin = req.headers.origin;
      if (origin !== undefined) {
        if (!this.#options.origins.allows(origin))
          return sendJson(res, 403, errorBody(`Origin ${origin} may not use this gateway`, { code: ErrorCode.ForbiddenOrigin }));
        if (this.#options.origins.isListed(origin)) {
          res.setHeader('access-control-allow-origin', origin);
          res.setHeader('access-control-expose-headers', 'retry-after');
          res.setHeader('vary', 'Origin');
          if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
            res.writeHead(204, {
              'access-control-allow-methods': 'GET, POST',
              'access-control-allow-headers': CORS_ALLOWED_HEADERS,
              'access-control-max-age': CORS_MAX_AGE_SECONDS,
            });
            res.end();
            return;
          }
        }
      }
      if (!this.#options.limits || !isOperation(req)) {
        void next(req, res);
        return;
      }
      this.#countOperation(req).then(
        (refusal) => {
          if (refusal) sendJson(res, 429, errorBody(refusal.message, rateLimitedExtensions(refusal)), { 'retry-after': String(refusal.retryAfterSeconds) });
          else void next(req, res);
        },
        (error: unknown) => {
          this.#options.log.error({ err: error }, 'rate limit check failed');
          void next(req, res);
        },
      );
    };
  }

  async #countOperation(req: IncomingMessage): Promise<Refusal | null> {
    // An invalid token counts against the address; Apollo then answers it 401.
    const viewer = await this.viewerOf(req).catch(() => null);
    const client = viewer?.customerId ? subjectClient(viewer.customerId) : addressClient(clientAddress(req, this.#options.trustedProxies));
    return this.#options.limits!.consume('operation', client);
  }

  /**
   * `verifyClient` of the WebSocket server: refuses a foreign `Origin` (403 FORBIDDEN_ORIGIN) and,
   * per client address, too many upgrades per window or too many open sockets (429 with
   * `Retry-After`). An admitted socket counts for its address until {@link authenticate} moves it
   * to its token subject, and until it closes.
   */
  readonly verifyClient = (
    info: { req: IncomingMessage },
    done: (ok: boolean, status?: number, body?: string, headers?: OutgoingHttpHeaders) => void,
  ): void => {
    this.#verifyUpgrade(info.req).then(
      (refused) => {
        if (!refused) return done(true);
        done(false, refused.status, refused.body, { ...refused.headers, 'content-type': 'application/json; charset=utf-8' });
      },
      (error: unknown) => {
        this.#options.log.error({ err: error }, 'WebSocket upgrade check failed');
        done(false, 500);
      },
    );
  };

  async #verifyUpgrade(req: IncomingMessage): Promise<{ status: number; headers: OutgoingHttpHeaders; body: string } | null> {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#options.origins.allows(origin)) {
      return { status: 403, headers: {}, body: errorBody(`Origin ${origin} may not open WebSockets on this gateway`, { code: ErrorCode.ForbiddenOrigin }) };
    }
    const admission: Admission = { client: addressClient(clientAddress(req, this.#options.trustedProxies)), lease: null, closed: false };
    this.#admissions.set(req, admission);
    const limits = this.#options.limits;
    if (!limits) return null;
    const tooMany = (refusal: Refusal) => ({
      status: 429,
      headers: { 'retry-after': String(refusal.retryAfterSeconds) },
      body: errorBody(refusal.message, rateLimitedExtensions(refusal)),
    });
    const rate = await limits.consume('socket', admission.client);
    if (rate) return tooMany(rate);
    const lease = await limits.acquireSocket(admission.client);
    if (!('release' in lease)) return tooMany(lease);
    admission.lease = lease;
    // The upgraded WebSocket keeps this TCP socket: its end, however it comes, frees the lease.
    req.socket.once('close', () => {
      admission.closed = true;
      admission.lease?.release();
    });
    if (req.socket.destroyed) {
      admission.closed = true;
      lease.release();
    }
    return null;
  }

  /** The client a WebSocket counts for: its token subject once authenticated, else its address. */
  socketClient(req: IncomingMessage): ClientKey {
    return this.#admissions.get(req)?.client ?? addressClient(clientAddress(req, this.#options.trustedProxies));
  }

  /**
   * After `connection_init`: a socket with a token counts for its subject from now on, not for
   * its address. Resolves to the refusal when the subject has too many open sockets already (the
   * caller closes it with {@link RATE_LIMITED_CLOSE_CODE}).
   */
  async authenticate(req: IncomingMessage, viewer: Viewer): Promise<Refusal | null> {
    const admission = this.#admissions.get(req);
    if (!admission || viewer.customerId === null) return null;
    const client = subjectClient(viewer.customerId);
    const limits = this.#options.limits;
    if (!limits) {
      admission.client = client;
      return null;
    }
    const lease = await limits.acquireSocket(client);
    if (!('release' in lease)) return lease;
    admission.client = client;
    const previous = admission.lease;
    admission.lease = lease;
    previous?.release();
    if (admission.closed) lease.release();
    return null;
  }

  /** Counts an operation received over graphql-ws: a subscription, or a query or mutation (as over HTTP). */
  async admitOperation(client: ClientKey, kind: 'subscription' | 'operation'): Promise<Refusal | null> {
    return this.#options.limits ? this.#options.limits.consume(kind, client) : null;
  }
}
