/**
 * The Sandbox landing page in a real Chromium. Sandbox's own script comes from Apollo's CDN, which
 * this machine cannot reach, so the test serves a stand-in for that one script and checks what
 * our page does with it: it constructs Sandbox with this gateway's endpoint, its graphql-ws
 * subscription endpoint, a development token and the example operation. It also shows, with
 * the browser's own Origin header, that the page's requests and WebSockets are same-origin.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { chromiumArgs } from '../../test/support/browser.ts';
import { viewerFromAuthorization } from '@swiftcart/platform/auth';
import { ensureChromium, freePort } from '../../scripts/infra.ts';
import { isolatedConfig } from '../../test/support/stack.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';
import { EXPLORER_BUNDLE } from '../src/explorer.ts';

/** Records the options our page hands to Sandbox, instead of drawing Sandbox. */
const STAND_IN = 'window.EmbeddedSandbox = class { constructor(options) { window.constructedWith = options; } };';

describe('Sandbox landing page in Chromium', () => {
  let config: ReturnType<typeof isolatedConfig>;
  let gateway: RunningGateway;
  let browser: Browser;
  /** Blank pages on another port: http://127.0.0.1:<port> is in ALLOWED_ORIGINS, http://localhost:<port> is foreign. */
  let pages: Server;
  let pagePort: number;

  before(async () => {
    pagePort = await freePort();
    pages = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><title>elsewhere</title>'));
    await new Promise<void>((resolve) => pages.listen(pagePort, '127.0.0.1', resolve));
    config = isolatedConfig({ ALLOWED_ORIGINS: `http://127.0.0.1:${pagePort}` });
    gateway = await startGateway({ config, port: 0 });
    // Built, so that a page that wrongly opened the explorer beside Sandbox would request its files.
    await EXPLORER_BUNDLE.buildIfStale();
    browser = await chromium.launch({ executablePath: ensureChromium({ log: console.log }), args: chromiumArgs() });
  });
  after(async () => {
    await browser?.close();
    await gateway?.close();
    pages?.close();
  });

  it('opens at the gateway root and starts Sandbox on this endpoint, its ws:// twin, a dev token and the example', async () => {
    const page = await browser.newPage();
    const cdn: string[] = [];
    await page.route(/embeddable-sandbox\.cdn\.apollographql\.com/, (route) => {
      cdn.push(route.request().url());
      return route.fulfill({ status: 200, contentType: 'application/javascript', body: STAND_IN });
    });
    const explorerFiles: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.startsWith('/graphiql/')) explorerFiles.push(request.url());
    });
    const root = new URL('/', gateway.url).href;
    const response = await page.goto(root);
    assert.equal(response?.status(), 200);
    assert.equal(cdn.length, 1, 'the page loads exactly one script from the CDN: Sandbox');
    const options = (await page.waitForFunction(() => (window as unknown as { constructedWith?: unknown }).constructedWith).then((h) => h.jsonValue())) as {
      initialEndpoint: string;
      initialSubscriptionEndpoint: string;
      initialState: { document: string; headers: Record<string, string> };
    };
    assert.equal(options.initialEndpoint, gateway.url);
    assert.equal(options.initialSubscriptionEndpoint, gateway.url.replace(/^http/, 'ws'));
    const viewer = await viewerFromAuthorization(options.initialState.headers.Authorization, config.jwtSecret);
    assert.equal(viewer.customerId, 'demo-customer');
    for (const operation of ['query', 'mutation', 'subscription']) assert.match(options.initialState.document, new RegExp(`^${operation} `, 'm'));
    // Sandbox came: the offline explorer is not loaded beside it.
    assert.deepEqual(explorerFiles, []);
    await page.close();
  });

  it("the page at the gateway root is same-origin: its POSTs and WebSockets are accepted, as are an allowed page's; a foreign page's are refused (gateway/src/origins.ts)", async () => {
    /** From inside `page`: a POSTed query's status, and whether a graphql-ws connection is acknowledged. */
    const probe = (page: import('playwright-core').Page) =>
      page.evaluate(async (url) => {
        const status = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ __typename }' }),
        }).then(
          (r) => r.status,
          () => 'blocked',
        );
        const socket = await new Promise<string>((resolve) => {
          const ws = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
          ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init' }));
          ws.onmessage = (event) => {
            resolve(JSON.parse(event.data).type);
            ws.close();
          };
          ws.onclose = (event) => resolve(`closed ${event.code}`);
        });
        return { status, socket };
      }, gateway.url);
    const own = await browser.newPage();
    await own.route(/embeddable-sandbox\.cdn\.apollographql\.com/, (route) =>
      route.fulfill({ status: 200, contentType: 'application/javascript', body: STAND_IN }),
    );
    await own.goto(new URL('/', gateway.url).href);
    assert.deepEqual(await probe(own), { status: 200, socket: 'connection_ack' });
    await own.close();

    const elsewhere = async (origin: string) => {
      const page = await browser.newPage();
      await page.goto(`${origin}/`);
      const seen = await probe(page);
      await page.close();
      return seen;
    };
    // The control: the browser lets a page elsewhere reach the gateway at all, when the gateway allows it (CORS included).
    assert.deepEqual(await elsewhere(`http://127.0.0.1:${pagePort}`), { status: 200, socket: 'connection_ack' });
    // A foreign page: 403 without CORS headers, which the page cannot even read; the upgrade is refused.
    assert.deepEqual(await elsewhere(`http://localhost:${pagePort}`), { status: 'blocked', socket: 'closed 1006' });
  });
});
