/**
 * Origins (gateway/src/origins.ts, edge.ts): a request or WebSocket upgrade carrying a foreign
 * `Origin` gets 403 FORBIDDEN_ORIGIN; the gateway's own origin (as bound, localhost aliases
 * included), PUBLIC_GATEWAY_URL's and ALLOWED_ORIGINS' are accepted, the allowed ones with CORS
 * headers; requests without `Origin` are unaffected. Real gateways in front of a real product subgraph.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '@swiftcart/platform/config';
import { startStack, type TestStack } from '../../test/support/stack.ts';
import { connectLive, wsUrl } from '../../test/support/subscriptions.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';

const SHOP = 'http://shop.example:8080';
const PUBLIC = 'https://api.example.com/graphql';

let stack: TestStack;
let gateway: RunningGateway;
let own: string;

before(async () => {
  stack = await startStack({ services: ['product'] });
  const config = loadConfig({ ...stack.config.vars, ALLOWED_ORIGINS: `${SHOP}, https://other.example`, PUBLIC_GATEWAY_URL: PUBLIC });
  gateway = await startGateway({ config, port: 0, subgraphUrls: { product: stack.services.product!.url } });
  own = new URL(gateway.url).origin;
});
after(async () => {
  await gateway?.close();
  await stack?.close();
});

function post(headers: Readonly<Record<string, string | undefined>> = {}): Promise<Response> {
  return fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: '{ __typename }' }) });
}

/** A raw WebSocket upgrade with `origin`: its HTTP status (101 when it opened) and body. */
function upgrade(origin?: string): Promise<{ status: number; body?: any }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(gateway.url), 'graphql-transport-ws', origin ? { origin } : {});
    socket.once('open', () => {
      socket.close();
      resolve({ status: 101 });
    });
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    socket.once('error', reject);
  });
}

describe('HTTP', () => {
  test('a foreign Origin gets 403 FORBIDDEN_ORIGIN, and so does "null"', async () => {
    for (const origin of ['http://evil.example', 'null', `${own.replace('127.0.0.1', '127.0.0.2')}`, 'http://shop.example:8081']) {
      const response = await post({ origin });
      assert.equal(response.status, 403, origin);
      const body = await response.json();
      assert.equal(body.errors[0].extensions.code, 'FORBIDDEN_ORIGIN', origin);
      assert.equal(response.headers.get('access-control-allow-origin'), null);
    }
  });

  test("no Origin (curl, servers), the gateway's own origin and its localhost aliases, and PUBLIC_GATEWAY_URL's are served", async () => {
    const port = new URL(gateway.url).port;
    for (const headers of [
      {},
      { origin: own },
      { origin: `http://localhost:${port}` },
      { origin: `http://[::1]:${port}` },
      { origin: 'https://api.example.com' },
    ]) {
      const response = await post(headers);
      assert.equal(response.status, 200, JSON.stringify(headers));
      assert.deepEqual(await response.json(), { data: { __typename: 'Query' } });
    }
  });

  test('an origin of ALLOWED_ORIGINS is served with CORS headers, and its preflight answered', async () => {
    const response = await post({ origin: SHOP });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), SHOP);
    const preflight = await fetch(gateway.url, {
      method: 'OPTIONS',
      headers: { origin: SHOP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), SHOP);
    assert.match(preflight.headers.get('access-control-allow-headers')!, /authorization/);
    assert.match(preflight.headers.get('access-control-allow-methods')!, /POST/);
    const foreign = await fetch(gateway.url, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(foreign.status, 403);
  });
});

describe('WebSocket upgrades', () => {
  test('a foreign Origin is refused with 403 FORBIDDEN_ORIGIN before any socket opens', async () => {
    const refused = await upgrade('http://evil.example');
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errors[0].extensions.code, 'FORBIDDEN_ORIGIN');
    assert.equal(gateway.metrics().connections, 0);
  });

  test('no Origin, the own origin and an allowed one open, and serve operations', async () => {
    for (const origin of [undefined, own, SHOP]) assert.equal((await upgrade(origin)).status, 101, origin);
    const client = connectLive(gateway.url, { headers: { origin: SHOP } });
    try {
      assert.deepEqual(await client.subscribe('{ __typename }').nextData(), { __typename: 'Query' });
    } finally {
      await client.close();
    }
  });
});

test('ALLOWED_ORIGINS entries that are not origins stop the gateway at start', async () => {
  for (const value of ['shop.example', 'ftp://shop.example', 'https://shop.example/app', 'https://shop.example?x=1']) {
    await assert.rejects(
      startGateway({ config: loadConfig({ ...stack.config.vars, ALLOWED_ORIGINS: value }), port: 0, subgraphUrls: { product: stack.services.product!.url } }),
      (error: Error) => error instanceof ConfigError && /ALLOWED_ORIGINS entries must be origins/.test(error.message),
      value,
    );
  }
});
