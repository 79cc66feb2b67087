/**
 * SubgraphDataSource (gateway/src/data-source.ts) does what @apollo/gateway's
 * RemoteGraphQLDataSource does: the same request on the wire, the same answers, the same errors and
 * the same cache-control restriction, for every kind of subgraph answer. Both talk to one local
 * HTTP server that answers as told.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type GraphQLDataSourceProcessOptions, RemoteGraphQLDataSource } from '@apollo/gateway';
import { GATEWAY_CREDENTIAL_HEADER } from '@swiftcart/platform/gateway-credential';
import { SubgraphDataSource } from '../src/data-source.ts';
import { createKeepAliveFetcher } from '../src/fetcher.ts';

const SECRET = 'subgraph-secret';

/** How the server answers a path: status, headers and body. */
const ANSWERS: Record<string, { status: number; headers: Record<string, string>; body: string }> = {
  '/data': { status: 200, headers: { 'content-type': 'application/json' }, body: '{"data":{"products":[{"sku":"A"}]}}' },
  '/errors': {
    status: 200,
    headers: { 'content-type': 'application/graphql-response+json; charset=utf-8' },
    body: '{"errors":[{"message":"bad cursor","extensions":{"code":"BAD_USER_INPUT"}}],"data":null,"extensions":{"cost":3}}',
  },
  '/cached': { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'max-age=60, private' }, body: '{"data":{"a":1}}' },
  '/public': { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age="30"' }, body: '{"data":{"a":1}}' },
  '/server-error': { status: 500, headers: { 'content-type': 'application/json' }, body: '{"errors":[{"message":"boom"}]}' },
  '/unauthenticated': { status: 401, headers: { 'content-type': 'application/json' }, body: '{"errors":[{"message":"no token"}]}' },
  '/forbidden': { status: 403, headers: { 'content-type': 'text/plain' }, body: 'go away' },
  '/text': { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>proxy page</html>' },
  '/array': { status: 200, headers: { 'content-type': 'application/json' }, body: '[1,2]' },
};

describe('SubgraphDataSource answers as RemoteGraphQLDataSource does', () => {
  let server: http.Server;
  let origin: string;
  const received: { path: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  const fetcher = createKeepAliveFetcher();

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push({ path: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const answer = ANSWERS[req.url!];
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    fetcher.close();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Apollo's data source as the gateway configured it before: the same headers set in willSendRequest. */
  const apollo = (url: string) =>
    new RemoteGraphQLDataSource({
      url,
      fetcher,
      apq: false,
      willSendRequest({ request, context }) {
        const authorization = (context as { authorization?: string }).authorization;
        if (authorization) request.http!.headers.set('authorization', authorization);
        request.http!.headers.set(GATEWAY_CREDENTIAL_HEADER, SECRET);
      },
    });
  const ours = (url: string) => new SubgraphDataSource({ name: 'products', url, fetcher, subgraphSecret: SECRET });

  /** One call: what came back (or was thrown), what the server received, and the cache hints given. */
  async function call(source: { process(options: GraphQLDataSourceProcessOptions): Promise<any> }, path: string, authorization?: string) {
    const hints: unknown[] = [];
    const options = {
      kind: 'incoming operation',
      request: { query: 'query Q__products__0($n:Int){products(first:$n){sku}}', variables: { n: 2 }, operationName: 'Q__products__0' },
      incomingRequestContext: { overallCachePolicy: { restrict: (hint: unknown) => hints.push(hint) } },
      context: { authorization },
    } as unknown as GraphQLDataSourceProcessOptions;
    const before = received.length;
    let outcome: unknown;
    try {
      const { http: response, ...rest } = await source.process(options);
      outcome = { answer: rest, status: response.status };
    } catch (error) {
      const e = error as Error & { extensions?: unknown };
      outcome = { thrown: e.message, extensions: JSON.parse(JSON.stringify(e.extensions ?? null)) };
    }
    const request = received.slice(before);
    assert.equal(request.length, 1);
    const { host: _host, connection: _connection, ...headers } = request[0].headers;
    return { outcome, hints, body: request[0].body, headers };
  }

  for (const path of Object.keys(ANSWERS)) {
    it(`the same request and outcome for ${path}`, async () => {
      for (const authorization of [undefined, 'Bearer token-1']) {
        const expected = await call(apollo(origin + path), path, authorization);
        const actual = await call(ours(origin + path), path, authorization);
        assert.deepEqual(actual, expected);
      }
    });
  }

  it('a refused gateway credential is an internal error naming the subgraph, not UNAUTHENTICATED', async () => {
    ANSWERS['/refused'] = {
      status: 401,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ errors: [{ message: 'no credential', extensions: { code: 'GATEWAY_CREDENTIAL_REQUIRED' } }] }),
    };
    const { outcome } = await call(ours(`${origin}/refused`), '/refused');
    assert.deepEqual(outcome, {
      thrown: 'Subgraph "products" refused the gateway\'s credential: SUBGRAPH_SECRET differs between the gateway and the subgraph',
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  });
});
