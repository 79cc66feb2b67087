/**
 * The gateway's HTTP client for subgraph calls: node:http with a keep-alive agent, buffering each
 * (small, JSON) response. @apollo/gateway's default fetcher is make-fetch-happen (HTTP cache
 * layer, retries machinery, node-fetch streams); Node's global fetch adds WHATWG streams and
 * Request/Response objects. For "POST a JSON body, read a JSON body" both cost more CPU per
 * request than a plain http.request on a pooled socket: see docs/adr/0001-gateway.md and
 * `npm run bench -- gateway` for the figures.
 */
import http from 'node:http';
import https from 'node:https';
import type { GatewayConfig } from '@apollo/gateway';

/** The fetch signature @apollo/gateway's data sources call. */
export type Fetcher = NonNullable<GatewayConfig['fetcher']>;
type FetcherRequestInit = NonNullable<Parameters<Fetcher>[1]>;
type FetcherResponse = Awaited<ReturnType<Fetcher>>;

/** How the pool behaves. */
export interface KeepAliveFetcherOptions {
  /** Most open sockets per subgraph origin (default 256): bounds what one gateway asks of a subgraph. */
  readonly maxSocketsPerOrigin?: number;
  /** Idle sockets kept per origin (default 64). */
  readonly maxFreeSockets?: number;
  /** A subgraph call that has not completed after this long fails (default 30 s). */
  readonly timeoutMs?: number;
}

/** A fetcher that can release its sockets. */
export interface KeepAliveFetcher extends Fetcher {
  /** Closes idle sockets and stops pooling; in-flight calls finish. */
  close(): void;
}

/** A complete, buffered HTTP response with the part of the fetch Response API Apollo uses. */
class BufferedResponse implements FetcherResponse {
  readonly url: string;
  readonly status: number;
  readonly statusText: string;
  readonly redirected = false;
  readonly #rawHeaders: readonly string[];
  readonly #body: Buffer;
  #headers: Headers | undefined;
  #used = false;

  constructor(url: string, status: number, statusText: string, rawHeaders: readonly string[], body: Buffer) {
    this.url = url;
    this.status = status;
    this.statusText = statusText;
    this.#rawHeaders = rawHeaders;
    this.#body = body;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  /** One header's value (several joined with ", "), or null: without building {@link headers}. */
  header(name: string): string | null {
    let value: string | null = null;
    for (let i = 0; i < this.#rawHeaders.length; i += 2) {
      if (this.#rawHeaders[i].length === name.length && this.#rawHeaders[i].toLowerCase() === name) {
        value = value === null ? this.#rawHeaders[i + 1] : `${value}, ${this.#rawHeaders[i + 1]}`;
      }
    }
    return value;
  }

  /** Built on first use: most responses are only asked for one or two headers. */
  get headers(): Headers {
    if (!this.#headers) {
      const headers = new Headers();
      for (let i = 0; i < this.#rawHeaders.length; i += 2) headers.append(this.#rawHeaders[i], this.#rawHeaders[i + 1]);
      this.#headers = headers;
    }
    return this.#headers;
  }

  #consume(): Buffer {
    if (this.#used) throw new TypeError('Body has already been consumed');
    this.#used = true;
    return this.#body;
  }

  text(): Promise<string> {
    try {
      return Promise.resolve(this.#consume().toString('utf8'));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  json(): Promise<any> {
    try {
      return Promise.resolve(JSON.parse(this.#consume().toString('utf8')));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    try {
      const body = this.#consume();
      return Promise.resolve(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength) as ArrayBuffer);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  clone(): BufferedResponse {
    if (this.#used) throw new TypeError('Cannot clone a consumed response');
    return new BufferedResponse(this.url, this.status, this.statusText, this.#rawHeaders, this.#body);
  }
}

interface Target {
  readonly module: typeof http | typeof https;
  readonly agent: http.Agent;
  readonly hostname: string;
  readonly port: string;
  readonly path: string;
}

/**
 * Creates a fetcher over pooled keep-alive sockets (one agent for http, one for https). Requests
 * are never retried: a subgraph mutation must not run twice because a socket died.
 */
export function createKeepAliveFetcher(options: KeepAliveFetcherOptions = {}): KeepAliveFetcher {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const agentOptions: http.AgentOptions = {
    keepAlive: true,
    keepAliveMsecs: 1_000,
    maxSockets: options.maxSocketsPerOrigin ?? 256,
    maxFreeSockets: options.maxFreeSockets ?? 64,
    scheduling: 'lifo',
    // Idle sockets close before a typical server-side keep-alive timeout (ours is 65 s); a shorter
    // `Keep-Alive: timeout=N` hint from a subgraph is honoured by the agent itself.
    timeout: 60_000,
  };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);
  // Subgraph URLs are a handful of fixed strings: parse each once.
  const targets = new Map<string, Target>();
  const targetOf = (url: string): Target => {
    let target = targets.get(url);
    if (!target) {
      const parsed = new URL(url);
      const secure = parsed.protocol === 'https:';
      if (!secure && parsed.protocol !== 'http:') throw new TypeError(`unsupported protocol in subgraph URL ${url}`);
      target = {
        module: secure ? https : http,
        agent: secure ? httpsAgent : httpAgent,
        hostname: parsed.hostname.replace(/^\[|\]$/g, ''),
        port: parsed.port,
        path: parsed.pathname + parsed.search,
      };
      if (targets.size < 1_000) targets.set(url, target);
    }
    return target;
  };

  const fetcher = (url: string, init: FetcherRequestInit = {}): Promise<FetcherResponse> =>
    new Promise<FetcherResponse>((resolve, reject) => {
      const target = targetOf(url);
      const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body, 'utf8') : init.body;
      const headers: Record<string, string | number> = { ...init.headers };
      if (body !== undefined) headers['content-length'] = body.byteLength;
      const req = target.module.request(
        {
          agent: target.agent,
          method: init.method ?? 'GET',
          hostname: target.hostname,
          port: target.port,
          path: target.path,
          headers,
          signal: init.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            resolve(
              new BufferedResponse(url, res.statusCode ?? 0, res.statusMessage ?? '', res.rawHeaders, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)),
            );
          });
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`request to ${url} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (error) => reject(new Error(`request to ${url} failed: ${error.message}`, { cause: error })));
      req.end(body);
    });

  return Object.assign(fetcher, {
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  });
}
