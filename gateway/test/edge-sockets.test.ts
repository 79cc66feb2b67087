/**
 * Caps and rate limits of graphql-ws (gateway/src/edge.ts, live-server.ts): the 101st
 * subscription on one socket is refused with RATE_LIMITED and a slot frees when one ends; the 21st
 * socket of one token subject is closed with 4429 "RATE_LIMITED: ..." and the count is shared by
 * two replicas; the 21st anonymous socket of one address and upgrades over the window get HTTP
 * 429 with Retry-After; subscriptions per window, and queries over graphql-ws counted with HTTP.
 * Real gateways, real inventory and product subgraphs, real Redis, real graphql-ws clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { loadConfig } from '@swiftcart/platform/config';
import { startStack, type TestStack } from '../../test/support/stack.ts';
import { waitFor } from '../../test/support/wait.ts';
import { type LiveClient, type SubscriptionProbe, connectLive, wsUrl } from '../../test/support/subscriptions.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';
import { DEFAULT_RATE_LIMITS } from '../src/rate-limits.ts';

const STOCK = 'subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku available } }';

let stack: TestStack;
const gateways: RunningGateway[] = [];
const clients: LiveClient[] = [];
let prefixes = 0;

before(async () => {
  stack = await startStack({ services: ['product', 'inventory'] });
});
after(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled(gateways.map((g) => g.close()));
  await stack?.close();
});

/** A gateway with `env` on top of the stack's configuration, with Redis keys of its own unless `redisPrefix` names shared ones. */
async function gatewayWith(env: Record<string, string>, redisPrefix = `${stack.config.redisPrefix}g${++prefixes}:`): Promise<RunningGateway> {
  const config = loadConfig({ ...stack.config.vars, REDIS_PREFIX: redisPrefix, ...env });
  const subgraphUrls = Object.fromEntries(Object.entries(stack.services).map(([name, s]) => [name, s.url]));
  const gateway = await startGateway({ config, port: 0, subgraphUrls });
  gateways.push(gateway);
  return gateway;
}

function connect(gateway: RunningGateway, token?: string): LiveClient {
  const client = connectLive(gateway.url, { token });
  clients.push(client);
  return client;
}

/** The GraphQL errors a refused operation failed with. */
function refusal(probe: SubscriptionProbe): { message: string; extensions: Record<string, unknown> } {
  assert.ok(Array.isArray(probe.error), `refused with GraphQL errors, not ${probe.describeEnd()}`);
  return (probe.error as { message: string; extensions: Record<string, unknown> }[])[0];
}

/** A raw WebSocket upgrade: the HTTP answer when refused, or "open". */
function upgrade(
  gateway: RunningGateway,
  headers: Record<string, string> = {},
): Promise<{ status: number; retryAfter?: string; body?: any; socket?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(gateway.url), 'graphql-transport-ws', { headers });
    socket.once('open', () => resolve({ status: 101, socket }));
    socket.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, body: text ? JSON.parse(text) : undefined }),
      );
    });
    socket.once('error', (error) => {
      if (!socket.listenerCount('unexpected-response')) reject(error);
    });
  });
}

describe('subscriptions per socket', () => {
  test('the 101st subscription on one socket is refused with RATE_LIMITED; ending one frees a slot', async () => {
    assert.equal(DEFAULT_RATE_LIMITS.maxSubscriptionsPerSocket, 100);
    const gateway = await gatewayWith({ MAX_SUBSCRIPTIONS_PER_SOCKET: '' });
    const client = connect(gateway);
    const probes = Array.from({ length: 100 }, (_, i) => client.subscribe(STOCK, { skus: [`CAP-${i}`] }));
    await waitFor(() => gateway.metrics().subscriptions === 100, '100 subscriptions open');
    const extra = client.subscribe(STOCK, { skus: ['CAP-100'] });
    await extra.end();
    const error = refusal(extra);
    assert.equal(error.extensions.code, 'RATE_LIMITED');
    assert.equal(error.extensions.limit, 'MAX_SUBSCRIPTIONS_PER_SOCKET');
    assert.equal(error.extensions.retryAfterSeconds, 10);
    assert.match(error.message, /at most 100/);
    assert.equal(gateway.metrics().subscriptions, 100);
    assert.ok(
      probes.every((p) => !p.ended),
      'the first 100 go on',
    );

    probes[0].dispose();
    await waitFor(() => gateway.metrics().subscriptions === 99, 'one subscription ended');
    const again = client.subscribe(STOCK, { skus: ['CAP-101'] });
    await waitFor(() => gateway.metrics().subscriptions === 100, 'the new subscription open');
    assert.equal(again.ended, false);
  });

  test('subscriptions started per window are counted per subject: the 4th of 3 gets RATE_LIMITED with the retry delay', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW: '3' });
    const token = await stack.token('sub-rate', ['customer']);
    // Across sockets: the count belongs to the subject, not to the socket.
    const [a, b] = [connect(gateway, token), connect(gateway, token)];
    a.subscribe(STOCK, { skus: ['RATE-1'] });
    a.subscribe(STOCK, { skus: ['RATE-2'] });
    b.subscribe(STOCK, { skus: ['RATE-3'] });
    await waitFor(() => gateway.metrics().subscriptions === 3, '3 subscriptions open');
    const fourth = b.subscribe(STOCK, { skus: ['RATE-4'] });
    await fourth.end();
    const error = refusal(fourth);
    assert.equal(error.extensions.code, 'RATE_LIMITED');
    assert.equal(error.extensions.limit, 'RATE_LIMIT_SUBSCRIPTIONS_PER_WINDOW');
    assert.ok(Number(error.extensions.retryAfterSeconds) >= 1 && Number(error.extensions.retryAfterSeconds) <= 60, JSON.stringify(error));
    // Someone else is not affected.
    const other = connect(gateway, await stack.token('sub-rate-other', ['customer'])).subscribe(STOCK, { skus: ['RATE-5'] });
    await waitFor(() => gateway.metrics().subscriptions === 4, "another subject's subscription open");
    assert.equal(other.ended, false);
  });

  test('queries over graphql-ws share the HTTP allowance', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '2' });
    const http = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(http.status, 200);
    const client = connect(gateway);
    const first = client.subscribe('{ __typename }');
    assert.deepEqual(await first.nextData(), { __typename: 'Query' });
    const second = client.subscribe('{ __typename }');
    await second.end();
    assert.equal(refusal(second).extensions.code, 'RATE_LIMITED');
    assert.equal(refusal(second).extensions.limit, 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW');
  });
});

describe('sockets per client', () => {
  test('the 21st socket of one token subject is closed with 4429 RATE_LIMITED; closing one lets a new one in', async () => {
    assert.equal(DEFAULT_RATE_LIMITS.maxSocketsPerClient, 20);
    const gateway = await gatewayWith({ MAX_SOCKETS_PER_CLIENT: '', RATE_LIMIT_SOCKETS_PER_WINDOW: '' });
    const token = await stack.token('many-sockets', ['customer']);
    const open = Array.from({ length: 20 }, (_, i) => {
      const client = connect(gateway, token);
      return { client, probe: client.subscribe(STOCK, { skus: [`SOCK-${i}`] }) };
    });
    await waitFor(() => gateway.metrics().subscriptions === 20, '20 sockets with a subscription each');
    const extra = connect(gateway, token);
    const refused = extra.subscribe(STOCK, { skus: ['SOCK-20'] });
    const closed = await extra.closed();
    assert.equal(closed.code, 4429);
    assert.match(closed.reason, /^RATE_LIMITED: Too many open WebSocket connections: at most 20 for this token subject/);
    await refused.end();
    assert.ok(
      open.every(({ probe }) => !probe.ended),
      'the first 20 go on',
    );

    // Another subject from the same address is not affected.
    const other = connect(gateway, await stack.token('few-sockets', ['customer'])).subscribe(STOCK, { skus: ['SOCK-OTHER'] });
    await waitFor(() => gateway.metrics().subscriptions === 21, "another subject's socket open");
    assert.equal(other.ended, false);

    // The count is released when a socket closes (in Redis, asynchronously: wait on the condition).
    await open[0].client.close();
    await waitFor(async () => {
      const client = connect(gateway, token);
      const probe = client.subscribe(STOCK, { skus: ['SOCK-AGAIN'] });
      const outcome = await Promise.race([
        client.closed(5_000).then(() => false),
        waitFor(() => gateway.metrics().subscriptions === 21, 'admitted', 5_000).then(() => true),
      ]);
      if (!outcome) await probe.end();
      return outcome;
    }, 'a new socket admitted after one closed');
  });

  test("two replicas share the count of a subject's sockets through Redis", async () => {
    const shared = `${stack.config.redisPrefix}socket-replicas:`;
    const env = { MAX_SOCKETS_PER_CLIENT: '2' };
    const a = await gatewayWith(env, shared);
    const b = await gatewayWith(env, shared);
    const token = await stack.token('replicated', ['customer']);
    connect(a, token).subscribe(STOCK, { skus: ['REP-1'] });
    connect(b, token).subscribe(STOCK, { skus: ['REP-2'] });
    await waitFor(() => a.metrics().subscriptions === 1 && b.metrics().subscriptions === 1, 'one socket on each replica');
    const third = connect(a, token);
    third.subscribe(STOCK, { skus: ['REP-3'] });
    assert.equal((await third.closed()).code, 4429);
  });

  test('the 21st anonymous socket of one address is refused at the upgrade: HTTP 429 with Retry-After', async () => {
    const gateway = await gatewayWith({ MAX_SOCKETS_PER_CLIENT: '', RATE_LIMIT_SOCKETS_PER_WINDOW: '' });
    const sockets: WebSocket[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const answer = await upgrade(gateway);
        assert.equal(answer.status, 101, `socket ${i + 1}: ${JSON.stringify(answer.body)}`);
        sockets.push(answer.socket!);
        // Sockets that announce no token count for their address.
        answer.socket!.send(JSON.stringify({ type: 'connection_init' }));
      }
      const refused = await upgrade(gateway);
      assert.equal(refused.status, 429);
      assert.equal(refused.retryAfter, '10');
      assert.deepEqual(refused.body.errors[0].extensions, { code: 'RATE_LIMITED', retryAfterSeconds: 10, limit: 'MAX_SOCKETS_PER_CLIENT' });
    } finally {
      for (const socket of sockets) socket.terminate();
    }
  });

  test('upgrades per window from one address: past RATE_LIMIT_SOCKETS_PER_WINDOW, HTTP 429 with Retry-After', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_SOCKETS_PER_WINDOW: '3' });
    for (let i = 0; i < 3; i++) {
      const answer = await upgrade(gateway);
      assert.equal(answer.status, 101);
      answer.socket!.close();
    }
    const refused = await upgrade(gateway);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.retryAfter) >= 1 && Number(refused.retryAfter) <= 60, refused.retryAfter);
    assert.equal(refused.body.errors[0].extensions.code, 'RATE_LIMITED');
    assert.equal(refused.body.errors[0].extensions.limit, 'RATE_LIMIT_SOCKETS_PER_WINDOW');
  });

  test('EDGE_LIMITS=off: no cap on sockets or subscriptions', async () => {
    const gateway = await gatewayWith({ EDGE_LIMITS: 'off', MAX_SOCKETS_PER_CLIENT: '1', MAX_SUBSCRIPTIONS_PER_SOCKET: '1' });
    const token = await stack.token('unlimited', ['customer']);
    const [a, b] = [connect(gateway, token), connect(gateway, token)];
    for (const client of [a, b]) for (const sku of ['OFF-1', 'OFF-2']) client.subscribe(STOCK, { skus: [sku] });
    await waitFor(() => gateway.metrics().subscriptions === 4, '2 sockets with 2 subscriptions each');
  });
});
