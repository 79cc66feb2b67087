/**
 * The storefront in a real browser (Debian Chromium through playwright-core) against the real
 * platform: all five services and the gateway in this process, and the storefront server
 * (server.ts) in front of them, so the page reaches /graphql and its WebSocket through the proxy
 * exactly as in `npm start`. Saves screenshots for docs/images/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { type RunningConsumer, startConsumer } from '@swiftcart/platform';
import { loadServiceModule, type TestStack } from '../../../test/support/stack.ts';
import { admissionOf } from '../../../subgraphs/order/src/service.ts';
import { type SagaSystem, placeOrder, seedSaga, startSagaStack, stockOf, systemOf, waitFor, waitForStock } from '../../../test/support/saga.ts';
import { ensureChromium, freePort } from '../../../scripts/infra.ts';
import { startStorefront, type StorefrontServer } from '../server.ts';

/**
 * The README's screenshots are refreshed with `UPDATE_SCREENSHOTS=1 npm test -- clients/storefront/test/storefront.test.ts`;
 * other runs write them to a temporary folder, so `npm test` leaves the checkout clean.
 */
const IMAGES =
  process.env.UPDATE_SCREENSHOTS === '1'
    ? path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'images')
    : mkdtempSync(path.join(tmpdir(), 'swiftcart-screenshots-'));
// A prefix per run: the test databases outlive runs, and search by prefix shows only this run's products.
const PREFIX = `WEB${Date.now().toString(36).slice(-5).toUpperCase()}`;
const SKU_A = `${PREFIX}-A`;
const SKU_B = `${PREFIX}-B`;
const SKU_C = `${PREFIX}-C`;
const ON_HAND = 20;
/** placeOrder's admission threshold in this stack: the last test makes the saga lag past it. */
const ADMISSION_MAX_LAG_MS = 3_000;

/** Chromium flags for a container without a GPU, sandbox or network services. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('storefront in a browser', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let storefront: StorefrontServer;
  let browser: Browser;
  let context: BrowserContext;

  before(async () => {
    const executablePath = ensureChromium({ log: console.log });
    // The gateway refuses browsers' requests from origins it does not know, and the storefront's
    // proxy forwards the page's Origin: so the storefront's port is chosen first and allowed.
    const storefrontPort = await freePort();
    // A slower mock provider keeps the order in AWAITING_PAYMENT long enough to see it move.
    stack = await startSagaStack({
      PAYMENT_PROVIDER_LATENCY_MS: '1500',
      PAYMENT_TIMEOUT_MS: '5000',
      ALLOWED_ORIGINS: `http://127.0.0.1:${storefrontPort}`,
      ORDER_ADMISSION_MAX_LAG_MS: String(ADMISSION_MAX_LAG_MS),
      ORDER_ADMISSION_PROBE_MS: '100',
      // One order waiting is the backlog here: the gate looks at the oldest PENDING order.
      ORDER_ADMISSION_LAG_RANK: '1',
    });
    system = systemOf(stack);
    await seedSaga(system, [
      { sku: SKU_A, onHand: ON_HAND, priceAmount: 1999 },
      { sku: SKU_B, onHand: ON_HAND, priceAmount: 2499 },
      { sku: SKU_C, onHand: ON_HAND, priceAmount: 999 },
    ]);
    storefront = await startStorefront({
      port: storefrontPort,
      host: '127.0.0.1',
      gatewayUrl: stack.gateway!.url,
      jwtSecret: stack.config.jwtSecret,
      log: () => {},
    });
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  });

  /** Inventory's consumers started again by the busy-shop test, in place of the stack's own. */
  const restarted: RunningConsumer[] = [];

  after(async () => {
    await Promise.allSettled(restarted.map((c) => c.stop()));
    await context?.close();
    await browser?.close();
    await storefront?.close();
    await stack?.[Symbol.asyncDispose]();
  });

  /** A new tab on the search for this run's products, signed in as alice (the session is shared by the context's tabs). */
  async function productsPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${storefront.url}#/?q=${PREFIX}`);
    await page.locator(`.card[data-sku="${SKU_A}"] .stock`).waitFor();
    return page;
  }

  const badge = (page: Page, sku: string) => page.locator(`.card[data-sku="${sku}"] .stock`);

  async function checkout(page: Page, sku: string, paymentMethod: string): Promise<string> {
    await page.goto(`${storefront.url}#/?q=${PREFIX}`);
    await page.locator(`.card[data-sku="${sku}"] button.add`).click();
    await page.goto(`${storefront.url}#/cart`);
    await page.selectOption('select[name=paymentMethod]', paymentMethod);
    await page.click('.checkout button[type=submit]');
    await page.waitForURL(/#\/orders\/.+/);
    return decodeURIComponent(new URL(page.url()).hash.replace('#/orders/', ''));
  }

  it('signs in as a demo customer and lists products with their stock', async () => {
    const page = await productsPage();
    await page.selectOption('header select[name=customer]', 'alice');
    await page.click('header button[type=submit]');
    await page.locator('[data-customer="alice"]').waitFor();
    // Signing in renders the page again.
    await badge(page, SKU_C).waitFor();
    assert.equal(await page.locator('.card').count(), 3);
    assert.equal(await badge(page, SKU_A).getAttribute('data-available'), String(ON_HAND));
    assert.match(await page.locator(`.card[data-sku="${SKU_A}"] .price`).innerText(), /19\.99/);
    await page.screenshot({ path: path.join(IMAGES, 'storefront-products.png') });
    assert.ok(statSync(path.join(IMAGES, 'storefront-products.png')).size > 10_000, 'a real screenshot');
    await page.close();
  });

  it('checks out, follows the order live to CONFIRMED, and another tab sees the stock drop', async () => {
    const watcher = await productsPage();
    const buyer = await context.newPage();
    const orderId = await checkout(buyer, SKU_A, 'tok_visa');
    // A marker on window disappears on a reload: the status must change without one.
    await buyer.evaluate(() => {
      (window as unknown as { marker: number }).marker = 1;
    });
    const first = await buyer.locator('.order-status').getAttribute('data-status', { timeout: 10_000 });
    assert.ok(first === 'PENDING' || first === 'AWAITING_PAYMENT', `the order page first shows ${first}`);
    await buyer.locator('.order-status[data-status="CONFIRMED"]').waitFor({ timeout: 15_000 });
    assert.equal(await buyer.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'the page was not reloaded');
    const timeline = await buyer.locator('.timeline li').evaluateAll((items) => items.map((li) => li.getAttribute('data-status')));
    assert.deepEqual([...new Set(timeline)], ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED']);
    await buyer.screenshot({ path: path.join(IMAGES, 'storefront-order.png') });
    assert.ok(statSync(path.join(IMAGES, 'storefront-order.png')).size > 10_000, 'a real screenshot');
    // The other tab's badge follows stockLevelChanged.
    await watcher.locator(`.card[data-sku="${SKU_A}"] .stock[data-available="${ON_HAND - 1}"]`).waitFor({ timeout: 10_000 });
    // "My orders" lists it.
    await buyer.goto(`${storefront.url}#/orders`);
    await buyer.locator(`[data-order="${orderId}"]`).waitFor();
    await watcher.close();
    await buyer.close();
  });

  it('a declined payment shows the declined message and the stock comes back', async () => {
    const watcher = await productsPage();
    const buyer = await context.newPage();
    await checkout(buyer, SKU_B, 'tok_decline');
    await buyer.locator('.order-status[data-status="CANCELLED"]').waitFor({ timeout: 15_000 });
    assert.match(await buyer.locator('.outcome').innerText(), /payment was declined/i);
    await waitForStock(system, SKU_B, { available: ON_HAND, reserved: 0 });
    // The badge dropped when the stock was reserved and returns when it is released.
    await watcher.locator(`.card[data-sku="${SKU_B}"] .stock[data-available="${ON_HAND}"]`).waitFor({ timeout: 10_000 });
    assert.equal((await stockOf(system, SKU_B)).available, ON_HAND);
    await watcher.close();
    await buyer.close();
  });

  it('says in words when checking out is not possible', async () => {
    const page = await context.newPage();
    await page.goto(`${storefront.url}#/`);
    // Signed out: checkout asks to sign in instead of failing.
    await page.evaluate(() => localStorage.removeItem('swiftcart.session'));
    await page.reload();
    await page.goto(`${storefront.url}#/?q=${PREFIX}`);
    await page.locator(`.card[data-sku="${SKU_C}"] button.add`).click();
    await page.goto(`${storefront.url}#/cart`);
    await page.click('.checkout button[type=submit]');
    assert.match(await page.locator('.checkout .error').innerText(), /sign in/i);
    // More than the stock: the order is placed, then rejected; the page says why.
    await page.selectOption('header select[name=customer]', 'bob');
    await page.click('header button[type=submit]');
    await page.locator('[data-customer="bob"]').waitFor();
    await page.fill(`tr[data-sku="${SKU_C}"] input`, String(ON_HAND + 5));
    await page.locator(`tr[data-sku="${SKU_C}"] input`).dispatchEvent('change');
    await page.click('.checkout button[type=submit]');
    const outcome = page.locator('.outcome, .checkout .error').first();
    await outcome.waitFor({ timeout: 15_000 });
    assert.match(await outcome.innerText(), /stock/i);
    await page.close();
  });
  it('a busy shop: the checkout button says it is retrying, and the order goes through once the saga catches up', { timeout: 90_000 }, async () => {
    // Inventory stops consuming: a placed order waits PENDING and the saga's lag grows past the
    // threshold, so placeOrder answers OVERLOADED with a retry delay, as under a real overload.
    const inventory = stack.services.inventory!;
    await Promise.all(inventory.consumers.map((c) => c.stop()));
    const carol = await stack.token('carol', ['customer']);
    await placeOrder(system, carol, [{ sku: SKU_C, quantity: 1 }], 'tok_visa');
    const admission = admissionOf(stack.services.order!.runtime);
    // Well past the threshold, so the delay asked (lag - threshold/2) gives the test time to act.
    await waitFor(
      () => (!admission.isOpen && admission.lagMs > 2 * ADMISSION_MAX_LAG_MS ? true : undefined),
      'the saga to lag past the admission threshold',
      30_000,
    );

    const page = await productsPage();
    await page.locator(`.card[data-sku="${SKU_C}"] button.add`).click();
    await page.goto(`${storefront.url}#/cart`);
    await page.selectOption('select[name=paymentMethod]', 'tok_visa');
    const button = page.locator('.checkout button[type=submit]');
    await button.click();
    await page.locator('.checkout button[type=submit]', { hasText: /The shop is busy, retrying in \d+ s/ }).waitFor({ timeout: 10_000 });
    assert.equal(await button.isDisabled(), true, 'no second click while it retries');
    await page.screenshot({ path: path.join(IMAGES, 'storefront-busy.png') });

    // Inventory consumes again: the waiting order is reserved, the gate opens, the SDK's retry
    // (same idempotency key) places the order, and the page follows it to CONFIRMED.
    const module = await loadServiceModule('inventory');
    for (const spec of module.consumers!(inventory.runtime))
      restarted.push(await startConsumer({ ...spec, runtime: inventory.runtime, registry: inventory.runtime.events }));
    await page.waitForURL(/#\/orders\/.+/, { timeout: 30_000 });
    await page.locator('.order-status[data-status="CONFIRMED"]').waitFor({ timeout: 20_000 });
    assert.ok(admission.refused >= 1, 'placeOrder was refused at least once');
    await page.close();
  });
});
