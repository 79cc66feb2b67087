/**
 * The offline explorer (gateway/src/explorer.ts) in a real Chromium that cannot reach the internet:
 * Chromium resolves no host but 127.0.0.1, so Apollo's CDN is out of reach as on a machine
 * offline. The gateway's landing page then opens GraphiQL, served by the gateway itself, and the
 * test runs its example query, mutation and subscription against a real stack (product,
 * inventory and order over PostgreSQL, Kafka and Redis), through GraphiQL's own Run button.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser, type Page } from 'playwright-core';
import path from 'node:path';
import { chromiumArgs, screenshotDir } from '../../test/support/browser.ts';
import { demoSkus, type SeededSaga, startSeededSaga } from '../../test/support/saga.ts';
import { waitFor } from '../../test/support/wait.ts';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { ensureChromium, freePort } from '../../scripts/infra.ts';
import { EXPLORER_BUNDLE, EXPLORER_PATH } from '../src/explorer.ts';
import { EXAMPLE_OPERATIONS } from '../src/sandbox.ts';

/** docs/images/ with UPDATE_SCREENSHOTS=1 (`explorer-offline.png`), else a temporary folder. */
const IMAGES = screenshotDir();

/** Where the proxy serves the gateway. */
const PROXY_PREFIX = '/api/';

/** Chromium's resolver fails every host but the loopback address the gateway listens on: no internet. */
const OFFLINE = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1';

/** The GraphQL results and graphql-ws `next` payloads the page received, in order. */
interface Traffic {
  readonly results: { operationName: string; body: any }[];
  readonly frames: any[];
  readonly outside: string[];
  /** Every request to this machine. */
  readonly local: string[];
  /** What the page's Content-Security-Policy refused: nothing, or the explorer is missing a piece. */
  readonly refused: string[];
}

describe('offline explorer in Chromium, internet blocked', () => {
  let saga: SeededSaga;
  let browser: Browser;
  let origin: string;
  let proxy: Server;
  /** The gateway through the proxy, e.g. http://127.0.0.1:5123/api/ */
  let proxied: string;

  before(async () => {
    const executablePath = ensureChromium({ log: console.log });
    // The gateway process (npm start) builds the bundle itself; a gateway inside a test does not.
    await EXPLORER_BUNDLE.buildIfStale(console.log);
    // A proxy that serves the gateway under /api/, as a developer's reverse proxy might: its pages'
    // origin is allowed to call the gateway.
    const proxyPort = await freePort();
    saga = await startSeededSaga(demoSkus(2), { ALLOWED_ORIGINS: `http://127.0.0.1:${proxyPort}` }, ['product', 'inventory', 'order']);
    origin = new URL(saga.stack.gateway!.url).origin;
    proxy = createServer((req, res) => {
      if (!req.url?.startsWith(PROXY_PREFIX)) return void res.writeHead(404).end();
      const upstream = httpRequest(`${origin}${req.url.slice(PROXY_PREFIX.length - 1)}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.writeHead(502).end());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));
    proxied = `http://127.0.0.1:${proxyPort}${PROXY_PREFIX}`;
    browser = await chromium.launch({ executablePath, args: [...chromiumArgs(), OFFLINE] });
  });
  after(async () => {
    proxy?.close();
    await browser?.close();
    await saga?.stack.close();
  });

  /** A page that records what it sends where, and what comes back. */
  async function openPage(url: string): Promise<{ page: Page; traffic: Traffic }> {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const traffic: Traffic = { results: [], frames: [], outside: [], local: [], refused: [] };
    page.on('pageerror', (error) => console.error('page error:', error));
    page.on('console', (message) => {
      if (/Content Security Policy/.test(message.text())) traffic.refused.push(message.text());
    });
    page.on('request', (request) => {
      if (!request.url().startsWith('http://127.0.0.1:') && !request.url().startsWith('ws://127.0.0.1:')) traffic.outside.push(request.url());
      else traffic.local.push(request.url());
    });
    page.on('response', async (response) => {
      const request = response.request();
      if (request.method() !== 'POST' || !response.url().startsWith(`${origin}/graphql`)) return;
      const operationName = request.postDataJSON()?.operationName ?? '';
      traffic.results.push({ operationName, body: await response.json().catch(() => null) });
    });
    page.on('websocket', (socket) =>
      socket.on('framereceived', ({ payload }) => {
        const message = JSON.parse(String(payload));
        if (message.type === 'next') traffic.frames.push(message.payload);
      }),
    );
    await page.goto(url);
    await page.locator('.graphiql-container').waitFor({ timeout: 20_000 });
    // GraphiQL's Run does nothing until it has the schema.
    await waitFor(() => resultOf(traffic, 'IntrospectionQuery'), 'GraphiQL to introspect the schema');
    return { page, traffic };
  }

  /**
   * Opens the tab of `operation` and presses Run, once the editor shows the operation: Run does
   * nothing until Monaco (loaded after the page) has mounted the operation and response editors.
   */
  async function run(page: Page, operation: string): Promise<void> {
    await page.locator('.graphiql-tab', { hasText: operation }).click();
    await page.locator('.graphiql-query-editor .monaco-editor .view-lines', { hasText: operation }).waitFor();
    // Run also needs the response editor, mounted on its own.
    await page.locator('.result-window .monaco-editor').waitFor();
    await page.locator('.graphiql-execute-button').click();
  }

  const resultOf = (traffic: Traffic, operationName: string) => traffic.results.find((r) => r.operationName === operationName)?.body;

  it('the landing page opens GraphiQL when Sandbox cannot load, and runs a query, a mutation and a subscription', async () => {
    const { page, traffic } = await openPage(`${origin}/`);
    assert.equal(await page.title(), 'SwiftCart · GraphiQL');
    // One tab per example operation, named by it.
    const tabs = await page.locator('.graphiql-tab').allInnerTexts();
    assert.deepEqual(
      tabs.map((t) => t.trim()),
      EXAMPLE_OPERATIONS.map((o) => o.name),
    );

    await run(page, 'Products');
    const products = await waitFor(() => resultOf(traffic, 'Products'), 'the Products result');
    assert.equal(products.errors, undefined, JSON.stringify(products.errors));
    assert.deepEqual(
      products.data.products.edges.map((e: any) => e.node.sku),
      ['SKU-0001', 'SKU-0002'],
    );
    assert.equal(products.data.products.edges[0].node.name, demoSkus(1)[0].name);
    await page.locator('.result-window', { hasText: 'SKU-0001' }).waitFor();

    // The mutation carries the development token from the Headers panel: the order is demo-customer's.
    await run(page, 'PlaceOrder');
    const placed = await waitFor(() => resultOf(traffic, 'PlaceOrder'), 'the PlaceOrder result');
    assert.equal(placed.errors, undefined, JSON.stringify(placed.errors));
    assert.equal(placed.data.placeOrder.status, 'PENDING');
    assert.deepEqual(placed.data.placeOrder.items, [{ sku: 'SKU-0001', quantity: 1 }]);
    const orders = await saga.system.em('order').execute<{ customer_id: string }[]>('select customer_id from orders where id = ?', [placed.data.placeOrder.id]);
    assert.deepEqual(
      orders.map((o) => o.customer_id),
      ['demo-customer'],
    );

    // The subscription runs over graphql-ws: the current stock first, then each change.
    await run(page, 'StockChanges');
    await waitFor(() => traffic.frames.length >= 2 || undefined, 'the current stock of both skus');
    const first = traffic.frames.map((f) => f.data.stockLevelChanged);
    assert.deepEqual(first.map((s: any) => s.sku).sort(), ['SKU-0001', 'SKU-0002']);
    const before = first.find((s: any) => s.sku === 'SKU-0002');
    const adjusted = await saga.stack.graphql('mutation { adjustStock(sku: "SKU-0002", delta: -3, reason: "explorer test") { available version } }', {
      token: saga.admin,
    });
    assert.equal(adjusted.errors, undefined, JSON.stringify(adjusted.errors));
    const change = await waitFor(
      () => traffic.frames.map((f) => f.data.stockLevelChanged).find((s: any) => s.sku === 'SKU-0002' && s.version > before.version),
      'the change to reach the explorer',
    );
    assert.equal(change.available, before.available - 3);
    await page.locator('.result-window', { hasText: new RegExp(`"available":\\s*${change.available},`) }).waitFor();
    await page.screenshot({ path: path.join(IMAGES, 'explorer-offline.png') });
    assert.deepEqual(traffic.refused, []);

    // Nothing left the machine but the one attempt at Sandbox's script, which failed.
    assert.deepEqual(traffic.outside, ['https://embeddable-sandbox.cdn.apollographql.com/v2/embeddable-sandbox.umd.production.min.js']);
    await page.close();
  });

  it(`opens directly at ${EXPLORER_PATH}, also through a proxy under a path, with the token in the Headers panel, and asks for nothing outside the gateway`, async () => {
    const { page, traffic } = await openPage(`${proxied}${EXPLORER_PATH.slice(1)}`);
    // Its files came through the proxy: the page names them relative to itself.
    const files = traffic.local.filter((url) => new URL(url).pathname.includes('/assets/'));
    assert.ok(files.length > 3, JSON.stringify(traffic.local));
    assert.deepEqual(
      files.filter((url) => !url.startsWith(`${proxied}graphiql/assets/`)),
      [],
    );
    await run(page, 'Products');
    const products = await waitFor(() => resultOf(traffic, 'Products'), 'the Products result');
    assert.equal(products.data.products.totalCount, 2);
    await page.getByRole('button', { name: 'Headers' }).click();
    await page.locator('.graphiql-editor-tool', { hasText: 'Bearer ey' }).waitFor();
    assert.deepEqual(traffic.outside, []);
    assert.deepEqual(traffic.refused, []);
    await page.close();
  });
});
