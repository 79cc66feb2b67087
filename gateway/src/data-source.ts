/**
 * The gateway's data source for subgraph queries and mutations: what @apollo/gateway's
 * `RemoteGraphQLDataSource` does (same body, same answers, same errors, the same cache-control
 * restriction), without building node-fetch `Headers` and `Request` objects for every fetch. Under
 * load those took 8 % of the gateway's CPU (issue 16's profile): a `Request` parses the URL again
 * and copies the headers, and it exists only for error reports. Parity with Apollo's class is
 * tested in gateway/test/data-source.test.ts, answer by answer.
 */
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { AUTHORIZATION_HEADER } from '@swiftcart/platform/auth';
import { ErrorCode } from '@swiftcart/platform/errors';
import { GATEWAY_CREDENTIAL_HEADER } from '@swiftcart/platform/gateway-credential';
import type { Fetcher } from './fetcher.ts';

type FetcherResponse = Awaited<ReturnType<Fetcher>>;
type Response = Awaited<ReturnType<GraphQLDataSource['process']>>;

/** Where a data source sends its fetches, and with which credential. */
export interface SubgraphDataSourceOptions {
  /** The subgraph's name in the supergraph, for error messages. */
  readonly name: string;
  readonly url: string;
  readonly fetcher: Fetcher;
  /** SUBGRAPH_SECRET: sent with every fetch, since the subgraphs refuse requests without it. */
  readonly subgraphSecret: string | null;
}

/** A response's header, without building a `Headers` object when the response can say it directly (fetcher.ts). */
function headerOf(response: Pick<FetcherResponse, 'headers'>, name: string): string | null {
  const direct = (response as { header?: (name: string) => string | null }).header;
  return direct ? direct.call(response, name) : response.headers.get(name);
}

/** Apollo's `parseBody`: JSON for a JSON content type, text otherwise. */
function parseBody(response: FetcherResponse): Promise<unknown> {
  const contentType = headerOf(response, 'content-type');
  return contentType && (contentType.startsWith('application/json') || contentType.startsWith('application/graphql-response+json'))
    ? response.json()
    : response.text();
}

/** Apollo's `parseCacheControlHeader`. */
function parseCacheControl(header: string | null): Record<string, string | true> {
  const directives: Record<string, string | true> = {};
  if (!header) return directives;
  for (const part of header.trim().split(/\s*,\s*/)) {
    const [name, value] = part.split(/\s*=\s*/, 2);
    directives[name] = value === undefined ? true : value.replace(/^"|"$/g, '');
  }
  return directives;
}

/**
 * @apollo/gateway honours a subgraph's Cache-Control by default (honorSubgraphCacheControlHeader):
 * the incoming operation's cache policy is restricted by the subgraph response's header. Incoming
 * operations only (the enum naming the kinds is not exported). Exported for the entity batcher,
 * whose callers share one response.
 */
export function restrictCachePolicy(
  options: GraphQLDataSourceProcessOptions<Record<string, any>>,
  response: Pick<FetcherResponse, 'headers'> | undefined | null,
): void {
  if (!response || !('incomingRequestContext' in options)) return;
  const policy = options.incomingRequestContext.overallCachePolicy;
  if (!policy || !('restrict' in policy)) return;
  const directives = parseCacheControl(headerOf(response, 'cache-control'));
  const hint: { maxAge: number; scope?: 'PRIVATE' | 'PUBLIC' } = { maxAge: 0 };
  const maxAge = directives['max-age'];
  if (typeof maxAge === 'string' && /^[0-9]+$/.test(maxAge)) hint.maxAge = Number(maxAge);
  if (directives.private === true) hint.scope = 'PRIVATE';
  if (directives.public === true) hint.scope = 'PUBLIC';
  policy.restrict(hint);
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A subgraph behind the gateway, called over HTTP with the caller's token and the gateway's credential. */
export class SubgraphDataSource implements GraphQLDataSource<Record<string, any>> {
  readonly url: string;
  readonly #name: string;
  readonly #fetcher: Fetcher;
  readonly #secret: string | null;

  constructor(options: SubgraphDataSourceOptions) {
    this.url = options.url;
    this.#name = options.name;
    this.#fetcher = options.fetcher;
    this.#secret = options.subgraphSecret;
  }

  async process(options: GraphQLDataSourceProcessOptions<Record<string, any>>): Promise<Response> {
    const { request } = options;
    const headers: Record<string, string> = {};
    if (request.http?.headers) for (const [name, value] of request.http.headers) headers[name] = value;
    headers['content-type'] = 'application/json';
    // The subgraph verifies the token again: it never trusts the network it sits on...
    const authorization = (options.context as { authorization?: string }).authorization;
    if (authorization) headers[AUTHORIZATION_HEADER] = authorization;
    // ...and this gateway's credential, without which it refuses the request (SUBGRAPH_SECRET).
    if (this.#secret) headers[GATEWAY_CREDENTIAL_HEADER] = this.#secret;
    if (!request.query) throw new Error('Missing query');
    // Apollo's body, byte for byte: the query first, then the rest of the request but its `http`.
    const { query, http: _http, ...rest } = request;
    const body = JSON.stringify({ query, ...rest });
    const response = await this.#fetcher(this.url, { method: 'POST', headers, body });
    if (!response.ok) throw await this.#errorFromResponse(response);
    const parsed = await parseBody(response);
    if (!isObject(parsed)) throw new Error(`Expected JSON response body, but received: ${parsed}`);
    restrictCachePolicy(options, response);
    return { ...parsed, http: response } as Response;
  }

  /**
   * Apollo's error for a non-2xx answer, but for a refused credential: a deployment fault
   * (SUBGRAPH_SECRET differs), not the client's, so an internal error, logged, rather than the
   * UNAUTHENTICATED Apollo makes of any 401.
   */
  async #errorFromResponse(response: FetcherResponse): Promise<GraphQLError> {
    const body = await parseBody(response);
    if ((body as { errors?: { extensions?: { code?: unknown } }[] } | undefined)?.errors?.[0]?.extensions?.code === ErrorCode.GatewayCredentialRequired) {
      return new GraphQLError(`Subgraph "${this.#name}" refused the gateway's credential: SUBGRAPH_SECRET differs between the gateway and the subgraph`, {
        extensions: { code: ErrorCode.InternalServerError },
      });
    }
    const extensions: Record<string, unknown> = { response: { url: response.url, status: response.status, statusText: response.statusText, body } };
    if (response.status === 401) extensions.code = 'UNAUTHENTICATED';
    else if (response.status === 403) extensions.code = 'FORBIDDEN';
    return new GraphQLError(`${response.status}: ${response.statusText}`, { extensions });
  }
}
