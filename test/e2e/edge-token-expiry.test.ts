/**
 * A subscription ends when its token expires (issue 9, item 3; platform/src/expiry.ts): at the
 * gateway and at a subgraph reached directly, the last message is UNAUTHENTICATED, the
 * subscription completes within a second of the token's `exp`, and the socket then closes with
 * 4403. Real services, PostgreSQL, Redis and Kafka; tokens that live 2-3 s.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { signToken } from '@swiftcart/platform';
import type { TestStack } from '../support/stack.ts';
import WebSocket from 'ws';
import { type LiveClient, type SubscriptionProbe, connectLive, wsUrl } from '../support/subscriptions.ts';
import { type SagaSystem, placeOrder, seedSaga, startSagaStack, systemOf } from '../support/saga.ts';

const ORDER = `subscription Order($id: ID!) { orderUpdated(id: $id) { id status version } }`;
/** Lifetime of the short tokens: `exp` is in whole seconds, so they live 2 to 3 s from signing. */
const SHORT_LIFETIME = '3s';

/** The `exp` of a token, in ms since the epoch. */
function expiresAt(token: string): number {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp * 1000;
}

/** Waits until `probe` has ended and returns when that was noticed. */
async function endedAt(probe: SubscriptionProbe, timeoutMs: number): Promise<number> {
  await probe.end(timeoutMs);
  return Date.now();
}

describe('subscriptions end when their token expires', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let orderId: string;
  const clients: LiveClient[] = [];

  before(async () => {
    stack = await startSagaStack();
    system = systemOf(stack);
    await seedSaga(system, [{ sku: 'EXPIRY-1', onHand: 10, priceAmount: 700 }]);
    const placed = await placeOrder(system, await stack.token('expiring-alice', ['customer']), [{ sku: 'EXPIRY-1', quantity: 1 }], 'tok_visa');
    orderId = placed.id;
  });
  after(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await stack?.close();
  });

  /** Subscribes to the order at `url` with `token` and waits for its current state. */
  async function follow(url: string, token: string, headers?: Readonly<Record<string, string>>): Promise<{ client: LiveClient; sub: SubscriptionProbe }> {
    const client = connectLive(url, { token, headers });
    clients.push(client);
    const sub = client.subscribe(ORDER, { id: orderId });
    const first = await sub.next(10_000);
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    assert.equal(first.data.orderUpdated.id, orderId);
    return { client, sub };
  }

  /**
   * The last message is UNAUTHENTICATED and the subscription completes (no error). This lazy
   * client then closes its socket itself (1000): it has nothing left on it. The server's 4403 a
   * second later is seen by a client that keeps its socket (the raw test below).
   */
  async function assertEndedAtExpiry(client: LiveClient, sub: SubscriptionProbe, token: string): Promise<void> {
    const exp = expiresAt(token);
    assert.ok(Date.now() < exp, 'the subscription started before the token expired');
    const ended = await endedAt(sub, exp - Date.now() + 5_000);
    assert.ok(ended >= exp, `ended ${exp - ended} ms before the token's exp`);
    assert.ok(ended - exp <= 1_000, `ended ${ended - exp} ms after the token's exp (at most 1 s)`);
    assert.equal(sub.completed, true, `completed rather than failed (${sub.describeEnd()})`);
    const last = sub.results.at(-1)!;
    assert.equal(last.data, undefined);
    assert.equal(last.errors?.[0].extensions?.code, 'UNAUTHENTICATED', JSON.stringify(last));
    assert.match(last.errors![0].message, /token has expired/);
    const closed = await client.closed(5_000);
    assert.ok(closed.code === 1000 || closed.code === 4403, `closed ${closed.code} ${closed.reason}`);
  }

  it("at the gateway: orderUpdated ends within a second of exp with UNAUTHENTICATED; a long-lived token's goes on", async () => {
    const short = await signToken(stack.config.jwtSecret, { sub: 'expiring-alice', roles: ['customer'] }, SHORT_LIFETIME);
    const long = await stack.token('expiring-alice', ['customer']);
    const { client, sub } = await follow(stack.gateway!.url, short);
    // The same order followed with a token that stays valid is not affected.
    const { sub: control } = await follow(stack.gateway!.url, long);
    await assertEndedAtExpiry(client, sub, short);
    assert.equal(control.ended, false, `the long-lived token's subscription goes on (${control.ended ? control.describeEnd() : ''})`);
    control.dispose();
  });

  it('at a subgraph reached directly: orderUpdated ends at exp the same way', async () => {
    const short = await signToken(stack.config.jwtSecret, { sub: 'expiring-alice', roles: ['customer'] }, SHORT_LIFETIME);
    const { client, sub } = await follow(stack.services.order!.url, short, stack.subgraphHeaders);
    await assertEndedAtExpiry(client, sub, short);
  });

  /** The whole exchange over the raw protocol, on a socket that stays open after its last subscription. */
  async function rawExchange(url: string, headers: Readonly<Record<string, string>> = {}): Promise<void> {
    const short = await signToken(stack.config.jwtSecret, { sub: 'expiring-alice', roles: ['customer'] }, SHORT_LIFETIME);
    const socket = new WebSocket(wsUrl(url), 'graphql-transport-ws', { headers: { ...headers } });
    const messages: any[] = [];
    let wake = () => {};
    socket.on('message', (data) => {
      messages.push(JSON.parse(String(data)));
      wake();
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    const message = async (type: string, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (let seen = 0; ; ) {
        for (; seen < messages.length; seen++) if (messages[seen].type === type) return messages.splice(seen, 1)[0];
        assert.ok(Date.now() < deadline, `no ${type} within ${timeoutMs} ms; received ${JSON.stringify(messages)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 50);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    };
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${short}` } }));
    await message('connection_ack');
    socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: ORDER, variables: { id: orderId } } }));
    const current = await message('next');
    assert.equal(current.payload.data.orderUpdated.id, orderId);
    const last = await message('next', expiresAt(short) - Date.now() + 2_000);
    assert.ok(Date.now() >= expiresAt(short));
    assert.equal(last.id, '1');
    assert.equal(last.payload.errors[0].extensions.code, 'UNAUTHENTICATED');
    assert.deepEqual(await message('complete'), { id: '1', type: 'complete' });
    // Between the last message and the close, the connection refuses new operations.
    socket.send(JSON.stringify({ id: '2', type: 'subscribe', payload: { query: ORDER, variables: { id: orderId } } }));
    const refused = await message('error');
    assert.equal(refused.id, '2');
    assert.equal(refused.payload[0].extensions.code, 'UNAUTHENTICATED');
    assert.deepEqual(await closed, { code: 4403, reason: 'Forbidden: the token has expired' });
  }

  it('over the raw protocol at the gateway: next (current state), next (UNAUTHENTICATED), complete, a later subscribe refused, then close 4403', async () => {
    await rawExchange(stack.gateway!.url);
  });

  it('over the raw protocol at a subgraph: the same exchange', async () => {
    await rawExchange(stack.services.order!.url, stack.subgraphHeaders);
  });

  it('an expired token cannot open a new connection: 4403 at connection_init', async () => {
    const expired = await signToken(stack.config.jwtSecret, { sub: 'expiring-alice', roles: ['customer'] }, Math.floor(Date.now() / 1000) - 1);
    const client = connectLive(stack.gateway!.url, { token: expired });
    clients.push(client);
    const sub = client.subscribe(ORDER, { id: orderId });
    await sub.end(5_000);
    assert.equal((await client.closed()).code, 4403);
    assert.equal(sub.results.length, 0);
  });
});
