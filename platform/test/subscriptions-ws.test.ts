/**
 * The subgraph's graphql-ws endpoint (platform/src/ws.ts): authentication in `connectionParams`
 * (4403 for a bad token), the connection-init timeout (4408), keep-alive pings, subscriptions only,
 * and shutdown: every socket closed with 1001 "Going away", every subscription ended, and a service
 * that can start again on the same port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'graphql';
import { buildSubgraphSchema } from '@apollo/subgraph';
import WebSocket from 'ws';
import {
  DEVELOPMENT_JWT_SECRET,
  SUBSCRIPTION_CLOSE_CODES,
  createLogger,
  listen,
  serveSubscriptions,
  signToken,
  startService,
  type RunningHttpServer,
  type SubscriptionServer,
  type Viewer,
} from '../src/index.ts';
import { loadServiceModule, startStack, type TestStack } from '../../test/support/stack.ts';
import { connectLive, type LiveClient } from '../../test/support/subscriptions.ts';
import { waitFor } from '../../test/support/wait.ts';

const log = createLogger('ws-test', process.env.TEST_LOG_LEVEL ?? 'fatal');
const SECRET = DEVELOPMENT_JWT_SECRET;

const TYPE_DEFS = parse(`
  type Query { "Unused." hello: String }
  type Subscription {
    "Who the connection is, then completes."
    whoami: String!
    "0, 1, ..., count - 1, then completes."
    ticks(count: Int!): Int!
    "Never yields; ends only when the client or the server ends it."
    forever: Int!
  }
`);

/** A test schema whose `forever` counts how many of its subscriptions are running. */
function testSchema(running: { count: number }) {
  return buildSubgraphSchema([
    {
      typeDefs: TYPE_DEFS,
      resolvers: {
        Subscription: {
          whoami: {
            subscribe: async function* (_: unknown, __: unknown, ctx: { viewer: Viewer }) {
              yield ctx.viewer.customerId ?? 'anonymous';
            },
            resolve: (value: string) => value,
          },
          ticks: {
            subscribe: async function* (_: unknown, { count }: { count: number }) {
              for (let i = 0; i < count; i++) yield i;
            },
            resolve: (value: number) => value,
          },
          forever: {
            subscribe: () => {
              running.count++;
              let release: (() => void) | undefined;
              const ended = new Promise<IteratorResult<number>>((resolve) => {
                release = () => resolve({ done: true, value: undefined });
              });
              let done = false;
              const finish = () => {
                if (!done) {
                  done = true;
                  running.count--;
                  release!();
                }
                return ended;
              };
              return {
                next: () => ended,
                return: finish,
                throw: finish,
                [Symbol.asyncIterator]() {
                  return this;
                },
              };
            },
            resolve: (value: number) => value,
          },
        },
      } as any,
    },
  ]);
}

/** A raw WebSocket speaking graphql-transport-ws, for what the graphql-ws client does not let a test do. */
function rawSocket(
  url: string,
  options: WebSocket.ClientOptions = {},
): { socket: WebSocket; closed: Promise<{ code: number; reason: string }>; opened: Promise<void> } {
  const socket = new WebSocket(url, 'graphql-transport-ws', options);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, closed, opened };
}

describe('the subgraph graphql-ws endpoint', () => {
  let http: RunningHttpServer;
  let server: SubscriptionServer;
  let wsUrl: string;
  const running = { count: 0 };
  const clients: LiveClient[] = [];

  before(async () => {
    http = await listen(
      (_req, res) => {
        res.statusCode = 404;
        res.end();
      },
      '127.0.0.1',
      0,
    );
    server = serveSubscriptions({
      server: http.server,
      schema: testSchema(running),
      jwtSecret: SECRET,
      log,
      context: (viewer) => ({ viewer }),
      keepAliveMs: 100,
      connectionInitWaitTimeoutMs: 300,
    });
    wsUrl = http.url.replace(/^http/, 'ws');
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await http?.close();
  });

  const connect = (options: Parameters<typeof connectLive>[1] = {}) => {
    const client = connectLive(wsUrl, options);
    clients.push(client);
    return client;
  };

  test('a valid token in connectionParams.authorization (or Authorization) is the viewer; none is anonymous', async () => {
    const token = await signToken(SECRET, { sub: 'alice', roles: ['customer'] });
    assert.deepEqual(await connect({ token }).subscribe('subscription { whoami }').nextData(), { whoami: 'alice' });
    const capital = connect({ connectionParams: { Authorization: `Bearer ${token}` } }).subscribe('subscription { whoami }');
    assert.deepEqual(await capital.nextData(), { whoami: 'alice' });
    assert.deepEqual(await connect().subscribe('subscription { whoami }').nextData(), { whoami: 'anonymous' });
  });

  test('an invalid token closes the connection with 4403 Forbidden before anything runs', async () => {
    const foreign = await signToken('another-secret-that-is-long-enough-for-hs256!', { sub: 'mallory', roles: ['admin'] });
    const params: Record<string, unknown>[] = [
      { authorization: `Bearer ${foreign}` },
      { authorization: 'Bearer not.a.jwt' },
      { authorization: 'Basic YWxhZGRpbjpvcGVuc2VzYW1l' },
      { authorization: 42 },
    ];
    for (const connectionParams of params) {
      const client = connect({ connectionParams });
      const probe = client.subscribe('subscription { whoami }');
      await probe.end();
      assert.equal(probe.results.length, 0);
      assert.equal((await client.closed()).code, SUBSCRIPTION_CLOSE_CODES.forbidden, JSON.stringify(connectionParams));
      assert.equal(SUBSCRIPTION_CLOSE_CODES.forbidden, 4403);
    }
  });

  test('a socket that never sends connection_init is closed with 4408 after the timeout', async () => {
    const { closed, opened } = rawSocket(wsUrl);
    await opened;
    const started = Date.now();
    const { code } = await closed;
    assert.equal(code, 4408);
    assert.ok(Date.now() - started >= 250, 'not before the timeout');
  });

  test('keep-alive: the server pings, and a peer that never answers is cut off', async () => {
    const polite = rawSocket(wsUrl);
    let pings = 0;
    polite.socket.on('ping', () => pings++);
    await polite.opened;
    polite.socket.send(JSON.stringify({ type: 'connection_init' }));
    await waitFor(
      () => pings >= 3,
      'three pings within 450 ms at a 100 ms keep-alive',
      450,
      () => `${pings} pings`,
      10,
    );
    assert.equal(polite.socket.readyState, WebSocket.OPEN, 'a peer that answers pings stays');
    polite.socket.close();

    const silent = rawSocket(wsUrl, { autoPong: false });
    await silent.opened;
    silent.socket.send(JSON.stringify({ type: 'connection_init' }));
    const { code } = await silent.closed;
    assert.equal(code, 1006, 'terminated without a close frame');
  });

  test('only subscriptions are served; a query is refused with an operation error, and the connection goes on', async () => {
    const client = connect();
    const query = client.subscribe('{ hello }');
    // Refused before execution: graphql-ws sends it as the operation's error message.
    await query.end();
    assert.equal(query.results.length, 0);
    assert.match(JSON.stringify(query.error), /Only subscriptions are served over WebSocket; send this query over HTTP/);
    // A client's mistakes keep the codes they have over HTTP.
    const invalid = client.subscribe('subscription { nosuchfield }');
    await invalid.end();
    assert.equal((invalid.error as any)?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED', JSON.stringify(invalid.error));
    const broken = client.subscribe('subscription {');
    await broken.end();
    assert.equal((broken.error as any)?.[0]?.extensions?.code, 'GRAPHQL_PARSE_FAILED', JSON.stringify(broken.error));
    const ticks = client.subscribe('subscription { ticks(count: 3) }');
    const values = [await ticks.nextData(), await ticks.nextData(), await ticks.nextData()];
    assert.deepEqual(values, [{ ticks: 0 }, { ticks: 1 }, { ticks: 2 }]);
    await ticks.end();
    assert.equal(ticks.completed, true);
  });

  test('closing sends 1001 "Going away" to every socket and ends their subscriptions', async () => {
    const ownHttp = await listen(
      (_req, res) => {
        res.statusCode = 404;
        res.end();
      },
      '127.0.0.1',
      0,
    );
    const own = serveSubscriptions({ server: ownHttp.server, schema: testSchema(running), jwtSecret: SECRET, log, context: (viewer) => ({ viewer }) });
    const url = ownHttp.url.replace(/^http/, 'ws');
    const a = connectLive(url);
    const b = connectLive(url);
    try {
      const before = running.count;
      const probes = [a.subscribe('subscription { forever }'), a.subscribe('subscription { forever }'), b.subscribe('subscription { forever }')];
      await waitFor(
        () => running.count >= before + 3,
        'three subscriptions running',
        3_000,
        () => running.count - before,
        10,
      );
      assert.equal(running.count, before + 3);
      assert.equal(own.connections, 2);
      const started = Date.now();
      await own.close();
      await ownHttp.close();
      assert.ok(Date.now() - started < 2_000, 'closing did not wait for a grace period');
      assert.deepEqual(await a.closed(), { code: 1001, reason: 'Going away' });
      assert.deepEqual(await b.closed(), { code: 1001, reason: 'Going away' });
      for (const probe of probes) await probe.end();
      assert.equal(running.count, before, 'every subscription was ended');
      assert.equal(own.connections, 0);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("a service's graphql-ws endpoint across a restart", () => {
  let stack: TestStack;
  before(async () => {
    stack = await startStack({ services: ['inventory'] });
  });
  after(async () => {
    await stack?.close();
  });

  test('closing the service closes its sockets with 1001 and its Redis channels; it starts again on the same port', async () => {
    const first = stack.services.inventory!;
    const { port } = first;
    const query = 'subscription { stockLevelChanged(skus: ["RESTART-1"]) { sku version } }';
    const before = connectLive(first.wsUrl, { headers: stack.subgraphHeaders });
    try {
      const probe = before.subscribe(query);
      assert.deepEqual(await probe.nextData(), { stockLevelChanged: { sku: 'RESTART-1', version: 0 } });
      assert.equal(first.runtime.live.channels.length, 1);
      await first.close();
      assert.deepEqual(await before.closed(), { code: 1001, reason: 'Going away' });
      await probe.end();
      assert.deepEqual(first.runtime.live.channels, []);
    } finally {
      await before.close();
    }

    const second = await startService(await loadServiceModule('inventory'), { config: stack.config, port });
    try {
      assert.equal(second.port, port);
      const after = connectLive(second.wsUrl, { headers: stack.subgraphHeaders });
      try {
        const probe = after.subscribe(query);
        assert.deepEqual(await probe.nextData(), { stockLevelChanged: { sku: 'RESTART-1', version: 0 } });
        probe.dispose();
      } finally {
        await after.close();
      }
    } finally {
      await second.close();
    }
  });
});
