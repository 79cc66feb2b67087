import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HeaderMap, type ApolloServer, type BaseContext, type HTTPGraphQLRequest, type HTTPGraphQLResponse } from '@apollo/server';
import { AUTHORIZATION_HEADER, type Viewer } from './auth.ts';
import { checkReadiness, type HealthCheck } from './health.ts';
import { GATEWAY_CREDENTIAL_STATUS, gatewayCredentialCheck, gatewayCredentialRequiredBody } from './gateway-credential.ts';
import type { Logger } from './logger.ts';
import { METRICS_PATH } from './metrics.ts';

/** Requests larger than this are refused with 413 before they are parsed. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Paths every SwiftCart HTTP server answers. */
export const PATHS = { graphql: '/graphql', health: '/healthz', ready: '/readyz' } as const;

/** A handler for an extra route; return false to fall through to 404. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean | void> | boolean | void;

/** What a worker process (`SERVICE_ROLE=worker`) answers at the GraphQL path: it serves no API. */
export const NO_API_MESSAGE =
  'This is a worker process (SERVICE_ROLE=worker): it runs the relay and the consumers and answers only /healthz and /readyz; the api processes of the service serve GraphQL';

/** What the HTTP server serves. */
export interface HttpServerOptions<TContext extends BaseContext> {
  /** Null in a worker process: only the probes and `routes` are served, GraphQL gets 404 with {@link NO_API_MESSAGE}. */
  readonly apollo: ApolloServer<TContext> | null;
  readonly context: (req: IncomingMessage) => Promise<TContext>;
  readonly readiness: Readonly<Record<string, HealthCheck>>;
  readonly readinessTimeoutMs: number;
  readonly log: Logger;
  /**
   * Served at `/` and any other path before 404 (the gateway's landing page). A key `<prefix>/*`
   * serves every path below `<prefix>/` that has no route of its own.
   */
  readonly routes?: Readonly<Record<string, RouteHandler>>;
  /**
   * A subgraph's `SUBGRAPH_SECRET` (or the secrets accepted while it is rotated): every request but the health probes must carry one
   * (platform/src/gateway-credential.ts), else 401 GATEWAY_CREDENTIAL_REQUIRED before the body is read.
   */
  readonly gatewaySecret?: string | readonly string[] | null;
  /** Served at `/metrics` (metrics.ts) like the probes: before, and without, the gateway's credential, for Prometheus. */
  readonly metrics?: RouteHandler;
  /**
   * Runs Apollo for a GraphQL request, or answers it otherwise (the gateway shares one execution
   * among identical requests in flight: gateway/src/dedup.ts). Default: `execute()`.
   */
  readonly execute?: (request: GraphQLHttpCall, execute: () => Promise<HTTPGraphQLResponse>) => Promise<HTTPGraphQLResponse>;
}

/** A GraphQL request as the HTTP handler read it: Apollo's view of it, the raw body text and the request. */
export interface GraphQLHttpCall {
  readonly request: HTTPGraphQLRequest;
  /** The body exactly as received ('' without one). */
  readonly text: string;
  readonly req: IncomingMessage;
}

/** A listening server; dispose to stop accepting and drain open requests. */
export interface RunningHttpServer extends AsyncDisposable {
  readonly server: http.Server;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Answers with `body` as JSON and `status`, with its length (no chunked encoding for a small
 * answer). `headers` are sent beside the content type (`Retry-After`, ...); `body` may be JSON
 * text already, when the caller serialised it once for many answers.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The `Authorization` header of a request, the first one when several were sent. */
export function authorizationOf(req: IncomingMessage): string | undefined {
  const header = req.headers[AUTHORIZATION_HEADER];
  return Array.isArray(header) ? header[0] : header;
}

/**
 * The caller of a GraphQL request, from `verify`: an invalid token fails the whole request with
 * HTTP 401 (Apollo answers a context error with its `extensions.http.status`) rather than a 200
 * carrying an error, so clients and proxies see an authentication failure as one.
 */
export async function viewerOr401(verify: () => Promise<Viewer>): Promise<Viewer> {
  try {
    return await verify();
  } catch (error) {
    (error as { extensions: Record<string, unknown> }).extensions.http = { status: 401 };
    throw error;
  }
}

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The route whose key is `<prefix>/*` for a `<prefix>/` that `pathname` starts with (the longest), if any. */
function prefixRoute(routes: Readonly<Record<string, RouteHandler>> | undefined, pathname: string): RouteHandler | undefined {
  let found: { length: number; route: RouteHandler } | undefined;
  for (const [key, route] of Object.entries(routes ?? {})) {
    if (!key.endsWith('/*')) continue;
    const prefix = key.slice(0, -1);
    if (pathname.startsWith(prefix) && prefix.length > (found?.length ?? 0)) found = { length: prefix.length, route };
  }
  return found?.route;
}

/** Serves Apollo over plain node:http: the leanest integration, with keep-alive and no framework. */
export function createHttpHandler<TContext extends BaseContext>(options: HttpServerOptions<TContext>) {
  const { apollo, log } = options;
  const fromGateway = options.gatewaySecret?.length ? gatewayCredentialCheck(options.gatewaySecret) : null;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (url.pathname === PATHS.health) return sendJson(res, 200, { status: 'ok' });
      if (url.pathname === PATHS.ready) {
        const report = await checkReadiness(options.readiness, options.readinessTimeoutMs);
        return sendJson(res, report.status === 'ready' ? 200 : 503, report);
      }
      if (url.pathname === METRICS_PATH && options.metrics && (await options.metrics(req, res)) !== false) return;
      if (fromGateway && !fromGateway(req.headers)) return sendJson(res, GATEWAY_CREDENTIAL_STATUS, gatewayCredentialRequiredBody());
      if (url.pathname !== PATHS.graphql) {
        const route = options.routes?.[url.pathname] ?? prefixRoute(options.routes, url.pathname);
        if (route && (await route(req, res)) !== false) return;
        return sendJson(res, 404, { error: apollo === null ? NO_API_MESSAGE : `no route ${url.pathname}; GraphQL is served at ${PATHS.graphql}` });
      }
      if (apollo === null) return sendJson(res, 404, { error: NO_API_MESSAGE });
      const headers = new HeaderMap();
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      let body: unknown;
      let text = '';
      if (req.method === 'POST') {
        text = await readBody(req);
        if ((headers.get('content-type') ?? '').includes('application/json')) {
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            return sendJson(res, 400, { errors: [{ message: 'The request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
          }
        } else {
          body = text;
        }
      }
      const request: HTTPGraphQLRequest = { method: req.method ?? 'GET', headers, search: url.search, body };
      const execute = () => apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest: request, context: () => options.context(req) });
      const response = await (options.execute ? options.execute({ request, text, req }, execute) : execute());
      for (const [name, value] of response.headers) res.setHeader(name, value);
      res.statusCode = response.status ?? 200;
      if (response.body.kind === 'complete') {
        res.end(response.body.string);
        return;
      }
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        return sendJson(res, 413, { errors: [{ message: `The request body exceeds ${MAX_BODY_BYTES} bytes`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
      }
      log.error({ err: error }, 'http request failed');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.end();
    }
  };
}

/** Listens on `host:port` (port 0 picks a free one) and resolves once bound. */
export async function listen(handler: http.RequestListener, host: string, port: number): Promise<RunningHttpServer> {
  const server = http.createServer({ keepAliveTimeout: 65_000 }, handler);
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // Requests in flight get a grace period; after it, their sockets are cut.
      setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, 5_000).unref();
    });
    return closing;
  };
  return { server, port: bound, url: `http://${host}:${bound}${PATHS.graphql}`, close, [Symbol.asyncDispose]: close };
}
