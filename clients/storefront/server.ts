/**
 * The storefront's own server (node:http, no extra dependencies). It serves the Vite build of
 * `src/` (building it first when missing or stale), reverse-proxies `/graphql` (HTTP and the
 * graphql-ws WebSocket upgrade) to the gateway so the browser talks to one origin and needs no
 * CORS, and outside production signs development tokens for demo users (three customers and an
 * admin) at `POST /dev/token`.
 *
 * Run: `node clients/storefront/server.ts` (port STOREFRONT_PORT, default 5173; gateway
 * STOREFRONT_GATEWAY_URL, default http://HOST:GATEWAY_PORT). `npm start` starts it for you; in
 * production (NODE_ENV=production, the Docker image) it serves the bundle built with the image.
 */
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { integerVar, loadConfig, signToken } from '@swiftcart/platform';
import { Bundle } from '@swiftcart/platform/bundle';
import { DEMO_USERS, DEMO_USER_NAMES, isDemoUser } from './src/demo-users.ts';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.join(ROOT, 'dist');

/**
 * The users the development sign-in offers, with the roles of their tokens (src/demo-users.ts, which
 * the page's header shows too); anything else is refused so the endpoint cannot mint arbitrary
 * subjects or roles.
 */
export { DEMO_USERS };

/** Options of {@link startStorefront}; every one has a default from the environment. */
export interface StorefrontServerOptions {
  readonly port?: number;
  readonly host?: string;
  /** The gateway's origin, e.g. http://127.0.0.1:4000 (a trailing /graphql is accepted). */
  readonly gatewayUrl?: string;
  /** Secret for development tokens; null disables `/dev/token` (production). */
  readonly jwtSecret?: string | null;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string) => void;
  /**
   * Build the bundle first when it is missing or stale (default: outside production). False
   * serves whatever `dist/` holds: production images, and tests of the server alone, which must
   * not race a browser test's build.
   */
  readonly build?: boolean;
}

/** A running storefront server. */
export interface StorefrontServer extends AsyncDisposable {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** The bundle: `src/` and the SDK it uses, built by Vite into `dist/` (platform/src/bundle.ts). */
export const STOREFRONT_BUNDLE = new Bundle({
  name: 'storefront',
  outDir: DIST,
  sources: [path.join(ROOT, 'index.html'), path.join(ROOT, 'src'), path.join(ROOT, '..', 'sdk', 'src')],
  vite: { root: ROOT },
});

/** Builds the bundle now (the Dockerfile's build step). */
export async function buildStorefront(): Promise<void> {
  await STOREFRONT_BUNDLE.build();
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Thrown by {@link readBody} past its limit: the client's mistake (413), not the server's. */
class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage, limit = 10_000): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > limit) throw new BodyTooLarge(`body over ${limit} bytes`);
  }
  return body;
}

/**
 * POST /dev/token {"user":"admin"} → {"user","roles","token"}: what a real sign-in would return, for
 * demo users only (`customer` is accepted in place of `user`, the field's earlier name).
 */
async function devToken(req: IncomingMessage, res: ServerResponse, secret: string): Promise<void> {
  if (req.method !== 'POST') return sendJson(res, 405, { error: 'use POST' });
  let user: unknown;
  try {
    const body = JSON.parse(await readBody(req)) as { user?: unknown; customer?: unknown } | null;
    user = typeof body === 'object' && body !== null ? (body.user ?? body.customer) : undefined;
  } catch (error) {
    if (error instanceof BodyTooLarge) return sendJson(res, 413, { error: 'expected JSON {"user": "alice"} of at most 10,000 bytes' });
    return sendJson(res, 400, { error: 'expected JSON {"user": "alice"}' });
  }
  if (!isDemoUser(user)) return sendJson(res, 400, { error: `user must be one of ${DEMO_USER_NAMES.join(', ')}` });
  const roles = DEMO_USERS[user];
  const token = await signToken(secret, { sub: user, roles });
  sendJson(res, 200, { user, roles, token });
}

/**
 * The decoded path of a request target, or null when it is not one: a malformed percent-escape
 * (`/%E0%A4%A`), an absolute-form target that is no URL, or a NUL byte. Such a request is the
 * client's mistake, so it gets 400 rather than an exception that would end the process.
 */
export function requestPath(target: string | undefined): string | null {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(target ?? '/', 'http://x').pathname);
  } catch {
    return null;
  }
  return pathname.includes('\0') ? null : pathname;
}

function serveStatic(req: IncomingMessage, res: ServerResponse): void {
  const pathname = requestPath(req.url);
  if (pathname === null) return sendJson(res, 400, { error: 'malformed URL' });
  // Any other path is a route of the single-page app: index.html.
  STOREFRONT_BUNDLE.send(res, STOREFRONT_BUNDLE.file(pathname) ?? path.join(DIST, 'index.html'));
}

/** Hop-by-hop headers are per connection, so they are not forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'];

/**
 * The request's headers for the gateway: its own host, and the browser's address appended to
 * X-Forwarded-For, so that a gateway that lists this server in TRUSTED_PROXIES counts each
 * anonymous shopper apart instead of all of them as the storefront.
 */
export function upstreamHeaders(req: IncomingMessage, target: URL): Record<string, string | string[] | undefined> {
  const prior = req.headers['x-forwarded-for'];
  const peer = req.socket.remoteAddress;
  const forwarded = [...(Array.isArray(prior) ? prior : prior ? [prior] : []), ...(peer ? [peer] : [])].join(', ');
  return { ...req.headers, host: target.host, ...(forwarded ? { 'x-forwarded-for': forwarded } : {}) };
}

function proxyHttp(req: IncomingMessage, res: ServerResponse, target: URL): void {
  const headers = upstreamHeaders(req, target);
  for (const name of HOP_BY_HOP) delete headers[name];
  const upstream = httpRequest({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
    const out = { ...answer.headers };
    for (const name of HOP_BY_HOP) delete out[name];
    res.writeHead(answer.statusCode ?? 502, out);
    answer.pipe(res);
  });
  upstream.on('error', () => {
    // The SDK turns a 502 without GraphQL errors into HTTP_ERROR; the UI says "cannot reach the shop".
    if (!res.headersSent) sendJson(res, 502, { error: 'the gateway cannot be reached' });
    else res.destroy();
  });
  req.pipe(upstream);
}

/** Forwards a WebSocket upgrade byte for byte once the gateway has accepted it (101). */
function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: URL, open: Set<Duplex>): void {
  // Upgraded sockets leave the server's bookkeeping, so close() ends them from this set.
  open.add(socket);
  socket.on('close', () => open.delete(socket));
  const upstream = httpRequest({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: upstreamHeaders(req, target) });
  // A client that leaves before the gateway answers takes the pending upstream request with it.
  socket.once('close', () => upstream.destroy());
  upstream.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length) socket.write(upstreamHead);
    if (head.length) upstreamSocket.write(head);
    upstreamSocket.pipe(socket).pipe(upstreamSocket);
    // Either side closing ends the other, so no half-open sockets linger.
    upstreamSocket.on('error', () => socket.destroy());
    socket.on('error', () => upstreamSocket.destroy());
    upstreamSocket.on('close', () => socket.destroy());
    socket.on('close', () => upstreamSocket.destroy());
  });
  upstream.on('response', (answer) => {
    // The gateway refused the upgrade: pass its answer on and close.
    socket.end(`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}\r\nconnection: close\r\n\r\n`);
  });
  upstream.on('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n'));
  upstream.end();
}

/** Builds the bundle if needed, then listens. Resolves once the server accepts connections. */
export async function startStorefront(options: StorefrontServerOptions = {}): Promise<StorefrontServer> {
  const env = process.env;
  // The storefront holds no secret in production, so it reads only the settings it needs there:
  // loadConfig() would demand the platform's secrets (JWT_SECRET, SUBGRAPH_SECRET) of it.
  const production = env.NODE_ENV === 'production';
  const log = options.log ?? ((level, msg) => console.log(JSON.stringify({ level, time: Date.now(), name: 'storefront', msg })));
  const port = options.port ?? integerVar(env, 'STOREFRONT_PORT', 5173);
  const host = options.host ?? (env.HOST || '127.0.0.1');
  const target = new URL(
    (options.gatewayUrl ?? env.STOREFRONT_GATEWAY_URL ?? `http://${host}:${integerVar(env, 'GATEWAY_PORT', 4000)}`).replace(/\/graphql\/?$/, ''),
  );
  // Development tokens only outside production: there, sign-in belongs to a real identity provider.
  const secret = options.jwtSecret !== undefined ? options.jwtSecret : production ? null : loadConfig(env).jwtSecret;
  // Production images build the bundle when the image is built (Dockerfile) and ship without Vite.
  if ((options.build ?? !production) && STOREFRONT_BUNDLE.isStale()) {
    await STOREFRONT_BUNDLE.buildIfStale((msg) => log('info', msg));
  } else if (!existsSync(path.join(DIST, 'index.html'))) {
    log('warn', 'dist/ holds no build: pages answer 503 until `npm run build -w @swiftcart/storefront` has run');
  }
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname === '/graphql') return proxyHttp(req, res, target);
    if (pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
    if (pathname === '/dev/token') {
      if (!secret) return sendJson(res, 404, { error: 'development sign-in is off in production' });
      return void devToken(req, res, secret).catch((error: unknown) => {
        log('error', `development token failed: ${(error as Error).message}`);
        if (!res.headersSent) sendJson(res, 500, { error: 'could not sign a development token' });
      });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
    serveStatic(req, res);
  };
  const server = createServer((req, res) => {
    // A bug of this server answers one request with 500; it must not end the process for everyone.
    try {
      route(req, res);
    } catch (error) {
      log('error', `${req.method} request failed: ${(error as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    }
  });
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req, socket, head) => {
    // Node hands the socket over without its error listener: a client that resets the connection
    // before the gateway answers would otherwise end the process with an uncaught ECONNRESET.
    socket.on('error', () => socket.destroy());
    if ((req.url ?? '').split('?')[0] === '/graphql') return proxyUpgrade(req, socket, head, target, upgraded);
    socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const url = `http://${host}:${typeof address === 'object' && address ? address.port : port}/`;
  log('info', `storefront on ${url}, /graphql proxied to ${target.origin}`);
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Open WebSockets (subscriptions) would keep close() waiting forever.
      server.closeAllConnections();
      for (const socket of upgraded) socket.destroy();
    });
  return { url, server, close, [Symbol.asyncDispose]: close };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const running = await startStorefront();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void running.close().then(() => process.exit(0)));
}
