/**
 * The storefront's server alone (no browser, no bundle build) against careless and hostile
 * requests sent byte for byte over TCP, since fetch would correct a malformed URL before sending
 * it. Every mistake gets a 4xx, the server keeps serving, and nothing is logged as an error.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { DEVELOPMENT_JWT_SECRET, viewerFromAuthorization } from '@swiftcart/platform';
import { waitFor } from '../../../test/support/wait.ts';
import { DEMO_USERS, requestPath, startStorefront, type StorefrontServer } from '../server.ts';

interface RawAnswer {
  readonly status: number;
  readonly body: string;
}

describe('storefront server against malformed input', () => {
  let storefront: StorefrontServer;
  let silentGateway: net.Server;
  const logged: { level: string; msg: string }[] = [];
  let port: number;

  /** Sends `head` (and `body`) as written and reads the answer until the server closes. */
  function raw(head: string, body = ''): Promise<RawAnswer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk) => {
        text += chunk;
      });
      socket.on('error', reject);
      socket.on('end', () => {
        const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
        if (!match) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
        resolve({ status: Number(match[1]), body: text.slice(text.indexOf('\r\n\r\n') + 4) });
      });
      socket.write(`${head}\r\nHost: storefront\r\nConnection: close\r\n${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`);
    });
  }

  const post = (path: string, body: string) => raw(`POST ${path} HTTP/1.1\r\nContent-Type: application/json`, body);

  async function assertServing(): Promise<void> {
    const answer = await fetch(`${storefront.url}healthz`);
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { status: 'ok' });
  }

  before(async () => {
    // A "gateway" that reads requests and never answers: upgrades stay pending.
    silentGateway = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silentGateway.listen(0, '127.0.0.1', resolve));
    const gatewayPort = (silentGateway.address() as net.AddressInfo).port;
    storefront = await startStorefront({
      port: 0,
      host: '127.0.0.1',
      gatewayUrl: `http://127.0.0.1:${gatewayPort}`,
      jwtSecret: DEVELOPMENT_JWT_SECRET,
      build: false,
      log: (level, msg) => logged.push({ level, msg }),
    });
    port = Number(new URL(storefront.url).port);
  });

  after(async () => {
    await storefront?.close();
    await new Promise((resolve) => silentGateway?.close(resolve));
  });

  test('requestPath: given malformed targets, when decoded, then null; given good ones, the decoded path', () => {
    assert.equal(requestPath('/%E0%A4%A'), null);
    assert.equal(requestPath('/%'), null);
    assert.equal(requestPath('/a%00b'), null);
    assert.equal(requestPath('http://['), null);
    assert.equal(requestPath('/caf%C3%A9?x=%'), '/café');
    assert.equal(requestPath(undefined), '/');
  });

  test('given GET /%E0%A4%A, when sent, then 400 and the server keeps serving', async () => {
    const answer = await raw('GET /%E0%A4%A HTTP/1.1');
    assert.equal(answer.status, 400);
    assert.deepEqual(JSON.parse(answer.body), { error: 'malformed URL' });
    await assertServing();
  });

  test('given other malformed targets (absolute-form that is no URL, NUL byte, lone %), when sent, then 400 each', async () => {
    for (const target of ['http://[', '/%00', '/assets/%', '/%C0%AF']) {
      const answer = await raw(`GET ${target} HTTP/1.1`);
      assert.equal(answer.status, 400, target);
    }
    await assertServing();
  });

  test('given a path that climbs out of dist/, when requested, then nothing outside dist/ is served', async () => {
    const answer = await raw('GET /..%2F..%2F..%2F..%2Fetc%2Fpasswd HTTP/1.1');
    // index.html when a bundle exists, 503 when none was built: never the file, never a crash.
    assert.ok([200, 503].includes(answer.status), String(answer.status));
    assert.doesNotMatch(answer.body, /root:/);
  });

  test('given bad bodies to POST /dev/token, when sent, then 4xx with a reason, and a good one still signs', async () => {
    for (const body of [
      '{"user":',
      'null',
      '[]',
      '"alice"',
      '{"user":"mallory"}',
      '{"customer":"root"}',
      '{"user":"constructor"}',
      '{"user":["admin"]}',
      '{}',
    ]) {
      const answer = await post('/dev/token', body);
      assert.equal(answer.status, 400, body);
      assert.match(JSON.parse(answer.body).error, /user/);
    }
    assert.equal(JSON.parse((await post('/dev/token', '{"user":"mallory"}')).body).error, 'user must be one of alice, bob, carol, admin');
    assert.equal((await post('/dev/token', JSON.stringify({ user: 'x'.repeat(20_000) }))).status, 413);
    assert.equal((await raw('GET /dev/token HTTP/1.1')).status, 405);
    assert.equal((await raw('DELETE /index.html HTTP/1.1')).status, 405);
    const good = await post('/dev/token', '{"user":"alice"}');
    assert.equal(good.status, 200);
    assert.equal(JSON.parse(good.body).user, 'alice');
    assert.equal(typeof JSON.parse(good.body).token, 'string');
  });

  test('given each demo user, when signed in, then the token carries its name and only its roles: customers are customers, admin is an admin', async () => {
    assert.deepEqual(DEMO_USERS, { alice: ['customer'], bob: ['customer'], carol: ['customer'], admin: ['admin'] });
    for (const [user, roles] of Object.entries(DEMO_USERS)) {
      const answer = await post('/dev/token', JSON.stringify({ user }));
      assert.equal(answer.status, 200, user);
      const body = JSON.parse(answer.body);
      assert.equal(body.user, user);
      assert.deepEqual(body.roles, roles);
      const viewer = await viewerFromAuthorization(`Bearer ${body.token}`, DEVELOPMENT_JWT_SECRET);
      assert.equal(viewer.customerId, user);
      assert.deepEqual(viewer.roles, roles);
      assert.ok(viewer.expiresAt! > Date.now() + 11 * 3_600_000, 'a 12-hour token');
    }
    // The field's earlier name still signs in (older pages, scripts).
    const earlier = await post('/dev/token', '{"customer":"bob"}');
    assert.equal(earlier.status, 200);
    assert.deepEqual(JSON.parse(earlier.body).roles, ['customer']);
  });

  test('given a WebSocket upgrade the client resets before the gateway answers, when it resets, then the server keeps serving and drops the upstream request', async () => {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      'GET /graphql HTTP/1.1\r\nHost: storefront\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n',
    );
    // Wait until the storefront has dialled the silent gateway, so the upgrade is in flight.
    await waitFor(async () => (await connectionsOf(silentGateway)) > 0, 'the storefront to dial the gateway', 5_000);
    socket.resetAndDestroy();
    await new Promise((resolve) => socket.once('close', resolve));
    await assertServing();
    await waitFor(async () => (await connectionsOf(silentGateway)) === 0, 'the upstream request to be dropped', 5_000);
    const other = await raw('GET /elsewhere HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade');
    assert.equal(other.status, 404);
    await assertServing();
  });

  test('none of it was logged as an error, and nothing logged carries a stack trace', () => {
    // Without a build (a fresh clone before the browser tests build one) the start-up says so once; that is no request's fault.
    const startUp = (entry: { msg: string }) => entry.msg.startsWith('dist/ holds no build');
    assert.deepEqual(
      logged.filter((entry) => entry.level !== 'info' && !startUp(entry)),
      [],
    );
    assert.ok(logged.every((entry) => !/\n\s+at /.test(entry.msg)));
  });
});

describe('storefront server in production (as in docker-compose.yml)', () => {
  test('given NODE_ENV=production and no secret at all, then it starts without building, refuses development sign-in, and serves', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { NODE_ENV: 'production', STOREFRONT_PORT: '0', HOST: '127.0.0.1', STOREFRONT_GATEWAY_URL: 'http://127.0.0.1:1' });
    delete process.env.JWT_SECRET;
    delete process.env.SUBGRAPH_SECRET;
    const logged: string[] = [];
    try {
      await using storefront = await startStorefront({ log: (level, msg) => logged.push(`${level}: ${msg}`) });
      assert.ok(!logged.some((line) => line.includes('building')), logged.join('\n'));
      // No demo user at all: neither the customers nor the admin.
      for (const user of Object.keys(DEMO_USERS)) {
        const signIn = await fetch(`${storefront.url}dev/token`, { method: 'POST', body: JSON.stringify({ user }) });
        assert.equal(signIn.status, 404, user);
        assert.deepEqual(await signIn.json(), { error: 'development sign-in is off in production' });
      }
      assert.equal((await fetch(`${storefront.url}healthz`)).status, 200);
      // The proxy answers for an unreachable gateway; it does not fail.
      assert.equal((await fetch(`${storefront.url}graphql`, { method: 'POST', body: '{}' })).status, 502);
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }
  });
});

describe("storefront proxy and the gateway's client address", () => {
  test("given a browser request or upgrade, when proxied, then the browser's address is appended to X-Forwarded-For", async () => {
    const seen: (string | undefined)[] = [];
    const upstream = http.createServer((req, res) => {
      seen.push(req.headers['x-forwarded-for'] as string | undefined);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    upstream.on('upgrade', (req, socket) => {
      seen.push(req.headers['x-forwarded-for'] as string | undefined);
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    try {
      await using storefront = await startStorefront({
        port: 0,
        host: '127.0.0.1',
        gatewayUrl: `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`,
        jwtSecret: DEVELOPMENT_JWT_SECRET,
        build: false,
        log: () => {},
      });
      assert.equal((await fetch(`${storefront.url}graphql`, { method: 'POST', body: '{}' })).status, 200);
      // A client's own claim stays in front: the gateway believes only the hop its trusted proxy appended.
      assert.equal((await fetch(`${storefront.url}graphql`, { method: 'POST', body: '{}', headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 200);
      const upgrade = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${storefront.url}graphql`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('upgrade', (res, socket) => {
          socket.destroy();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(upgrade, 403);
      assert.deepEqual(seen, ['127.0.0.1', '203.0.113.9, 127.0.0.1', '127.0.0.1']);
    } finally {
      await new Promise((resolve) => upstream.close(resolve));
    }
  });
});

function connectionsOf(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((error, count) => (error ? reject(error) : resolve(count))));
}
