/**
 * The Sandbox landing page in a real Chromium. Sandbox's own script comes from Apollo's CDN, which
 * this machine cannot reach, so the test serves a stand-in for that one script and checks what
 * our page does with it: it constructs Sandbox with this gateway's endpoint, its graphql-ws
 * subscription endpoint, a development token and the example operation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chromium, type Browser } from 'playwright-core';
import { viewerFromAuthorization } from '@swiftcart/platform/auth';
import { ensureChromium } from '../../scripts/infra.ts';
import { isolatedConfig } from '../../test/support/stack.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Records the options our page hands to Sandbox, instead of drawing Sandbox. */
const STAND_IN = 'window.EmbeddedSandbox = class { constructor(options) { window.constructedWith = options; } };';

describe('Sandbox landing page in Chromium', () => {
  const config = isolatedConfig();
  let gateway: RunningGateway;
  let browser: Browser;

  before(async () => {
    gateway = await startGateway({ config, port: 0 });
    browser = await chromium.launch({ executablePath: ensureChromium({ log: console.log }), args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('opens at the gateway root and starts Sandbox on this endpoint, its ws:// twin, a dev token and the example', async () => {
    const page = await browser.newPage();
    const cdn: string[] = [];
    await page.route(/embeddable-sandbox\.cdn\.apollographql\.com/, (route) => {
      cdn.push(route.request().url());
      return route.fulfill({ status: 200, contentType: 'application/javascript', body: STAND_IN });
    });
    const root = new URL('/', gateway.url).href;
    const response = await page.goto(root);
    assert.equal(response?.status(), 200);
    assert.equal(cdn.length, 1, 'the page loads exactly one script from the CDN: Sandbox');
    const options = await page.waitForFunction(() => (window as unknown as { constructedWith?: unknown }).constructedWith).then((h) => h.jsonValue()) as {
      initialEndpoint: string; initialSubscriptionEndpoint: string; initialState: { document: string; headers: Record<string, string> };
    };
    assert.equal(options.initialEndpoint, gateway.url);
    assert.equal(options.initialSubscriptionEndpoint, gateway.url.replace(/^http/, 'ws'));
    const viewer = await viewerFromAuthorization(options.initialState.headers.Authorization, config.jwtSecret);
    assert.equal(viewer.customerId, 'demo-customer');
    for (const operation of ['query', 'mutation', 'subscription']) assert.match(options.initialState.document, new RegExp(`^${operation} `, 'm'));
    await page.close();
  });
});
