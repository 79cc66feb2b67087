/** The gateway's keep-alive subgraph client against a local HTTP server. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createKeepAliveFetcher } from '../src/fetcher.ts';

let server: http.Server;
let base: string;
let connections = 0;

before(async () => {
  server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/slow') return void setTimeout(() => res.end('late'), 2_000).unref();
      const status = req.url === '/forbidden' ? 403 : 200;
      const body = JSON.stringify({
        method: req.method,
        auth: req.headers.authorization ?? null,
        length: req.headers['content-length'],
        echo: Buffer.concat(chunks).toString(),
      });
      res.writeHead(status, { 'content-type': 'application/json', 'x-multi': ['a', 'b'] });
      res.end(body);
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

test('POSTs the body with its headers and reads JSON, reusing one socket', async () => {
  const fetcher = createKeepAliveFetcher();
  try {
    const before = connections;
    for (let i = 0; i < 5; i++) {
      const response = await fetcher(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer x' },
        body: '{"query":"{ a }"}',
      });
      assert.equal(response.ok, true);
      assert.equal(response.status, 200);
      assert.equal(response.url, `${base}/graphql`);
      assert.equal(response.headers.get('content-type'), 'application/json');
      assert.equal(response.headers.get('x-multi'), 'a, b');
      const body = await response.json();
      assert.deepEqual(body, { method: 'POST', auth: 'Bearer x', length: '17', echo: '{"query":"{ a }"}' });
      assert.equal(response.bodyUsed, true);
      await assert.rejects(response.text(), /already been consumed/);
    }
    assert.equal(connections - before, 1, 'sequential calls share one keep-alive connection');
  } finally {
    fetcher.close();
  }
});

test('a non-2xx answer is a response with ok false, not an exception; clone reads the body twice', async () => {
  const fetcher = createKeepAliveFetcher();
  try {
    const response = await fetcher(`${base}/forbidden`, { method: 'POST', body: Buffer.from('{}') });
    assert.equal(response.ok, false);
    assert.equal(response.status, 403);
    assert.equal(response.statusText, 'Forbidden');
    const copy = response.clone();
    assert.equal(JSON.parse(await response.text()).echo, '{}');
    assert.equal(JSON.parse(new TextDecoder().decode(await copy.arrayBuffer())).echo, '{}');
  } finally {
    fetcher.close();
  }
});

test('a refused connection and a timeout are errors that name the URL', async () => {
  const fetcher = createKeepAliveFetcher({ timeoutMs: 200 });
  try {
    await assert.rejects(
      fetcher('http://127.0.0.1:9/graphql', { method: 'POST', body: '{}' }),
      /request to http:\/\/127\.0\.0\.1:9\/graphql failed: .*ECONNREFUSED/,
    );
    await assert.rejects(fetcher(`${base}/slow`, { method: 'POST', body: '{}' }), /timed out after 200 ms/);
  } finally {
    fetcher.close();
  }
});

test('only http and https URLs are accepted', async () => {
  const fetcher = createKeepAliveFetcher();
  try {
    await assert.rejects(fetcher('ftp://example.com/graphql'), /unsupported protocol/);
  } finally {
    fetcher.close();
  }
});
