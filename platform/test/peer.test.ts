/**
 * Calling a peer subgraph (platform/src/peer.ts) against real local HTTP servers standing in for
 * the peer: what it sends (the gateway's credential, a token of the customer that never outlives
 * theirs), what it answers (the peer's errors with their codes, SERVICE_UNAVAILABLE when out of
 * reach or too slow), and a replica that refuses the connection skipped for the next.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GATEWAY_CREDENTIAL_HEADER, loadConfig, peerClient, viewerFromAuthorization, type Viewer } from '@swiftcart/platform';
import { freePort } from '../../scripts/infra.ts';

const JWT_SECRET = 'peer-test-secret-peer-test-secret';
const SUBGRAPH_SECRET = 'peer-test-gateway-credential-of-32-bytes-or-more';

interface Seen {
  readonly credential: string | undefined;
  readonly authorization: string | undefined;
  readonly body: { query: string; variables: Record<string, unknown> };
}

/** A peer that records each request and answers what `answer` says (or nothing, for `hang`). */
async function peer(answer: (seen: Seen) => unknown | 'hang') {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk));
    req.on('end', () => {
      const request: Seen = {
        credential: req.headers[GATEWAY_CREDENTIAL_HEADER] as string | undefined,
        authorization: req.headers.authorization,
        body: JSON.parse(raw),
      };
      seen.push(request);
      const reply = answer(request);
      if (reply === 'hang') return;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return { url, seen, close };
}

const configFor = (urls: readonly string[]) => loadConfig({ NODE_ENV: 'test', JWT_SECRET, SUBGRAPH_SECRET, ORDER_URL: urls.join(','), LOG_LEVEL: 'fatal' });

describe('peerClient', () => {
  const servers: { close(): Promise<void> }[] = [];
  let ok: Awaited<ReturnType<typeof peer>>;
  before(async () => {
    ok = await peer((seen) =>
      seen.body.query.includes('fail')
        ? { errors: [{ message: 'no such sku', extensions: { code: 'BAD_USER_INPUT', field: 'input.items[0].sku' } }] }
        : { data: { echo: seen.body.variables } },
    );
    servers.push(ok);
  });
  after(async () => {
    for (const server of servers) await server.close();
  });

  it("sends the gateway's credential and a token of the same customer that never outlives theirs", async () => {
    const client = peerClient(configFor([ok.url]), 'order');
    const expiresAt = Math.floor(Date.now() / 1000) * 1000 + 30_000;
    const viewer: Viewer = { customerId: 'alice', roles: ['customer'], expiresAt };
    assert.deepEqual(await client.request('query { echo }', { a: 1 }, { as: viewer }), { echo: { a: 1 } });
    const sent = ok.seen.at(-1)!;
    assert.equal(sent.credential, SUBGRAPH_SECRET);
    const forwarded = await viewerFromAuthorization(sent.authorization, JWT_SECRET);
    assert.equal(forwarded.customerId, 'alice');
    assert.deepEqual(forwarded.roles, ['customer']);
    assert.ok(forwarded.expiresAt! <= expiresAt, `${forwarded.expiresAt} after ${expiresAt}`);
    await client.request('query { echo }');
    assert.equal(ok.seen.at(-1)!.authorization, undefined, 'no customer, no token');
  });

  it("answers the peer's error with its message and extensions", async () => {
    const client = peerClient(configFor([ok.url]), 'order');
    await assert.rejects(client.request('mutation { fail }'), (error: any) => {
      assert.equal(error.message, 'no such sku');
      assert.deepEqual(error.extensions, { code: 'BAD_USER_INPUT', field: 'input.items[0].sku' });
      return true;
    });
  });

  it('is SERVICE_UNAVAILABLE when the peer is too slow or out of reach', async () => {
    const slow = await peer(() => 'hang');
    servers.push(slow);
    await assert.rejects(
      peerClient(configFor([slow.url]), 'order').request('query { x }', {}, { timeoutMs: 100 }),
      (error: any) => error.extensions.code === 'SERVICE_UNAVAILABLE',
    );
    const nowhere = `http://127.0.0.1:${await freePort()}/graphql`;
    await assert.rejects(peerClient(configFor([nowhere]), 'order').request('query { x }'), (error: any) => error.extensions.code === 'SERVICE_UNAVAILABLE');
  });

  it('goes to the next replica when one refuses the connection, and tries that one last for a while', async () => {
    const down = `http://127.0.0.1:${await freePort()}/graphql`;
    const client = peerClient(configFor([down, ok.url]), 'order');
    const before = ok.seen.length;
    for (let i = 0; i < 4; i++) assert.deepEqual(await client.request('query { echo }', { i }), { echo: { i } });
    assert.equal(ok.seen.length - before, 4, 'every call answered by the live replica');
  });
});
