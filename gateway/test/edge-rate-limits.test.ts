/**
 * Rate limits of GraphQL operations over HTTP (gateway/src/rate-limits.ts, edge.ts): 429 with
 * `Retry-After` and RATE_LIMITED past the allowance, served again in the next window; per token
 * subject, per address without one (X-Forwarded-For only from TRUSTED_PROXIES); one count shared
 * by two replicas through Redis; the defaults stop a burst of 300 anonymous requests; EDGE_LIMITS=off;
 * in-memory limits while Redis is away. Real gateways in front of a real product subgraph, real Redis.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '@swiftcart/platform/config';
import { freePort } from '../../scripts/infra.ts';
import { TEST_RATE_LIMITS, startStack, type TestStack } from '../../test/support/stack.ts';
import { waitFor } from '../../test/support/wait.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';
import { DEFAULT_RATE_LIMITS, addressClient, clientAddress, trustedProxies } from '../src/rate-limits.ts';

/** Answered by the gateway itself: what is counted is the request, not the work behind it. */
const QUERY = '{ __typename }';

let stack: TestStack;
let productUrl: string;
const gateways: RunningGateway[] = [];
let prefixes = 0;

before(async () => {
  stack = await startStack({ services: ['product'] });
  productUrl = stack.services.product!.url;
});
after(async () => {
  await Promise.allSettled(gateways.map((g) => g.close()));
  await stack?.close();
});

/**
 * A gateway with `env` on top of the stack's configuration. Each gets Redis keys of its own
 * (under the stack's prefix, which the stack clears), unless `redisPrefix` names shared ones.
 */
async function gatewayWith(env: Record<string, string>, redisPrefix = `${stack.config.redisPrefix}g${++prefixes}:`): Promise<RunningGateway> {
  const config = loadConfig({ ...stack.config.vars, REDIS_PREFIX: redisPrefix, ...env });
  const gateway = await startGateway({ config, port: 0, subgraphUrls: { product: productUrl } });
  gateways.push(gateway);
  return gateway;
}

interface Answer {
  readonly status: number;
  readonly retryAfter: string | null;
  readonly body: any;
}

async function post(gateway: RunningGateway, options: { token?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(gateway.url, { method: 'POST', headers, body: JSON.stringify({ query: QUERY }) });
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() };
}

/** `count` requests, `concurrency` at a time; the answers in order. */
async function burst(count: number, send: () => Promise<Answer>, concurrency = count): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        next++;
        answers.push(await send());
      }
    }),
  );
  return answers;
}

const statuses = (answers: readonly Answer[]) => answers.map((a) => a.status);

/** Asserts a 429 with `Retry-After` and the RATE_LIMITED body naming `limit`. */
function assertRateLimited(answer: Answer, limit: string, maxRetryAfter: number): void {
  assert.equal(answer.status, 429, JSON.stringify(answer.body));
  const retryAfter = Number(answer.retryAfter);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= maxRetryAfter, `Retry-After: ${answer.retryAfter}`);
  const [error] = answer.body.errors;
  assert.equal(error.extensions.code, 'RATE_LIMITED');
  assert.equal(error.extensions.retryAfterSeconds, retryAfter);
  assert.equal(error.extensions.limit, limit);
  assert.match(error.message, /Rate limit exceeded/);
}

describe('operations over HTTP', () => {
  test('a burst over the limit gets 429 with Retry-After and RATE_LIMITED; the next window is served again', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_WINDOW_SECONDS: '1', RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '5' });
    const answers = await burst(15, () => post(gateway));
    const refused = answers.filter((a) => a.status === 429);
    // A 1 s window may turn during the burst: at most two windows' worth are served.
    assert.ok(refused.length >= 5, `refused ${refused.length} of 15: ${statuses(answers)}`);
    assert.deepEqual(new Set(statuses(answers)), new Set([200, 429]));
    for (const answer of refused) assertRateLimited(answer, 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 1);
    // The next window: wait on the condition, not on a clock.
    let again!: Answer;
    await waitFor(
      async () => {
        again = await post(gateway);
        return again.status !== 429;
      },
      'the next window to serve again',
      5_000,
      () => again?.status,
      250,
    );
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual(again.body, { data: { __typename: 'Query' } });
  });

  test('probes, /metrics and the landing page are not counted', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '1' });
    assert.equal((await post(gateway)).status, 200);
    assertRateLimited(await post(gateway), 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 60);
    const origin = new URL(gateway.url).origin;
    for (let i = 0; i < 5; i++) {
      assert.equal((await fetch(`${origin}/healthz`)).status, 200);
      assert.notEqual((await fetch(`${origin}/readyz`)).status, 429);
      assert.equal((await fetch(`${origin}/metrics`)).status, 200);
      assert.equal((await fetch(`${origin}/`, { headers: { accept: 'text/html' } })).status, 200);
    }
  });

  test('a token subject has its own allowance; anonymous callers and invalid tokens count for the address', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '2', RATE_LIMIT_HTTP_PER_WINDOW: '3' });
    assert.deepEqual(statuses(await burst(2, () => post(gateway))), [200, 200]);
    assertRateLimited(await post(gateway), 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 60);
    // An invalid token would otherwise be a way around the address's allowance.
    assertRateLimited(await post(gateway, { token: 'not-a-token' }), 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 60);
    const alice = await stack.token('alice', ['customer']);
    assert.deepEqual(statuses(await burst(3, () => post(gateway, { token: alice }))), [200, 200, 200]);
    assertRateLimited(await post(gateway, { token: alice }), 'RATE_LIMIT_HTTP_PER_WINDOW', 60);
    // Another subject from the same address has its own allowance; another token of alice's does not.
    assert.equal((await post(gateway, { token: await stack.token('bob', ['customer']) })).status, 200);
    assertRateLimited(await post(gateway, { token: await stack.token('alice', ['admin']) }), 'RATE_LIMIT_HTTP_PER_WINDOW', 60);
  });

  test('X-Forwarded-For names the client only when the peer is in TRUSTED_PROXIES', async () => {
    const untrusting = await gatewayWith({ RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '2' });
    const via = (address: string) => ({ headers: { 'x-forwarded-for': address } });
    assert.equal((await post(untrusting, via('203.0.113.1'))).status, 200);
    assert.equal((await post(untrusting, via('203.0.113.2'))).status, 200);
    assert.equal((await post(untrusting, via('203.0.113.3'))).status, 429, 'a client cannot pick its own address');

    const trusting = await gatewayWith({ RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '2', TRUSTED_PROXIES: '127.0.0.1, ::1' });
    for (const address of ['203.0.113.1', '203.0.113.2']) {
      assert.deepEqual(statuses(await burst(2, () => post(trusting, via(address)))), [200, 200], address);
      assert.equal((await post(trusting, via(address))).status, 429, address);
    }
    // The proxy's own requests (no header) are the proxy's.
    assert.equal((await post(trusting)).status, 200);
  });

  test('two gateway replicas share one limit through Redis', async () => {
    const shared = `${stack.config.redisPrefix}replicas:`;
    const env = { RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '4' };
    const a = await gatewayWith(env, shared);
    const b = await gatewayWith(env, shared);
    assert.deepEqual(statuses([await post(a), await post(b), await post(a), await post(b)]), [200, 200, 200, 200]);
    assertRateLimited(await post(a), 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 60);
    assertRateLimited(await post(b), 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 60);
  });

  test('the defaults: of 300 anonymous requests in a burst, 120 are served and 180 get 429', async () => {
    const defaults = Object.fromEntries(Object.keys(TEST_RATE_LIMITS).map((key) => [key, '']));
    const gateway = await gatewayWith(defaults);
    assert.equal(DEFAULT_RATE_LIMITS.anonymousOperationsPerWindow, 120);
    assert.equal(DEFAULT_RATE_LIMITS.windowSeconds, 60);
    const answers = await burst(300, () => post(gateway), 30);
    assert.equal(answers.filter((a) => a.status === 200).length, 120);
    assert.equal(answers.filter((a) => a.status === 429).length, 180);
  });

  test('EDGE_LIMITS=off counts nothing', async () => {
    const gateway = await gatewayWith({ RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '1', EDGE_LIMITS: 'off' });
    assert.deepEqual(statuses(await burst(5, () => post(gateway))), [200, 200, 200, 200, 200]);
  });

  test('with Redis unreachable the gateway serves, and counts per replica in memory', async () => {
    const gateway = await gatewayWith({
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      READINESS_TIMEOUT_MS: '200',
      RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: '3',
    });
    assert.deepEqual(statuses(await burst(3, () => post(gateway))), [200, 200, 200]);
    assertRateLimited(await post(gateway), 'RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW', 60);
  });

  test('bad settings stop the gateway at start with a message naming them', async () => {
    for (const [key, value, pattern] of [
      ['RATE_LIMIT_HTTP_PER_WINDOW', '0', /RATE_LIMIT_HTTP_PER_WINDOW must be an integer from 1/],
      ['RATE_LIMIT_WINDOW_SECONDS', '1.5', /RATE_LIMIT_WINDOW_SECONDS must be an integer/],
      ['MAX_SOCKETS_PER_CLIENT', 'many', /MAX_SOCKETS_PER_CLIENT must be an integer/],
      ['TRUSTED_PROXIES', '10.0.0.0/33', /TRUSTED_PROXIES entries must be IP addresses or CIDR ranges/],
      ['TRUSTED_PROXIES', 'proxy.local', /TRUSTED_PROXIES entries/],
    ] as const) {
      await assert.rejects(gatewayWith({ [key]: value }), (error: Error) => error instanceof ConfigError && pattern.test(error.message), `${key}=${value}`);
    }
  });
});

describe('client addresses', () => {
  const request = (remoteAddress: string, forwarded?: string) =>
    ({ socket: { remoteAddress }, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } }) as unknown as IncomingMessage;

  test('the peer is the client unless it is a trusted proxy; then the nearest untrusted hop', () => {
    const trusted = trustedProxies({ vars: { TRUSTED_PROXIES: '10.0.0.0/8,::1' } });
    assert.equal(clientAddress(request('198.51.100.7', '203.0.113.9'), null), '198.51.100.7');
    assert.equal(clientAddress(request('198.51.100.7', '203.0.113.9'), trusted), '198.51.100.7');
    assert.equal(clientAddress(request('10.1.2.3', '203.0.113.9'), trusted), '203.0.113.9');
    // A forged hop on the left does not help: the proxy appended the real one.
    assert.equal(clientAddress(request('10.1.2.3', '1.1.1.1, 203.0.113.9, 10.9.9.9'), trusted), '203.0.113.9');
    assert.equal(clientAddress(request('::1', 'garbage, 203.0.113.9'), trusted), '203.0.113.9');
    assert.equal(clientAddress(request('::ffff:10.1.2.3', '203.0.113.9'), trusted), '203.0.113.9');
    assert.equal(clientAddress(request('10.1.2.3'), trusted), '10.1.2.3');
  });

  test('IPv4-mapped addresses are IPv4; IPv6 clients count per /64', () => {
    assert.equal(clientAddress(request('::ffff:192.0.2.1'), null), '192.0.2.1');
    assert.equal(addressClient('192.0.2.1').key, 'addr:192.0.2.1');
    assert.equal(addressClient('2001:db8:1:2:aaaa::1').key, 'addr:2001:db8:1:2::/64');
    assert.equal(addressClient('2001:db8:1:2:bbbb:cccc:dddd:eeee').key, 'addr:2001:db8:1:2::/64');
    assert.equal(addressClient('2001:db8::1').key, 'addr:2001:db8:0:0::/64');
    assert.equal(addressClient('::1').key, 'addr:0:0:0:0::/64');
    assert.equal(addressClient('2001:db8::1').anonymous, true);
  });
});
