/**
 * The admin sales dashboard (`#/admin`) in a real browser (Debian Chromium through playwright-core)
 * against the real platform, analytics service included, behind the storefront server as in
 * `npm start`. Only the demo admin sees it; orders placed and confirmed through the API show on the
 * open page without a reload (salesUpdated), in the figures, the table and the chart's own data,
 * and the top products list them by name. Saves docs/images/admin-dashboard.png with
 * `UPDATE_SCREENSHOTS=1 npm test -- clients/storefront/test/admin-dashboard.test.ts`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { statSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { chromiumArgs, screenshotDir } from '../../../test/support/browser.ts';
import type { TestStack } from '../../../test/support/stack.ts';
import { type SagaSystem, demoSkus, placeOrder, seedSaga, startSagaStack, systemOf, waitFor, waitForStatus } from '../../../test/support/saga.ts';
import { ensureChromium, freePort } from '../../../scripts/infra.ts';
import { startStorefront, type StorefrontServer } from '../server.ts';
import { SERVICE_NAMES } from '@swiftcart/platform';

/** docs/images/ with UPDATE_SCREENSHOTS=1, else a temporary folder, so `npm test` leaves the checkout clean. */
const IMAGES = screenshotDir();
/** Two products of the demo catalogue that `npm start` seeds (scripts/seed.ts), as the screenshot shows them. */
const [PRODUCT_A, PRODUCT_B] = demoSkus(2);
const SKU_A = PRODUCT_A.sku;
const SKU_B = PRODUCT_B.sku;
const PRICE_A = PRODUCT_A.priceAmount!;
const PRICE_B = PRODUCT_B.priceAmount!;

/** What the page shows of the current hour and of the 24 hours, from the figures' data attributes. */
interface Shown {
  readonly start: string;
  readonly ordersPlaced: number;
  readonly ordersConfirmed: number;
  readonly revenue: number;
  readonly totalOrdersConfirmed: number;
  readonly totalRevenue: number;
}

async function shown(page: Page): Promise<Shown> {
  const figures = page.locator('.sales-figures');
  const read = async (name: string) => {
    const value = await figures.getAttribute(`data-${name}`);
    assert.ok(value !== null, `.sales-figures has data-${name}`);
    return value;
  };
  return {
    start: await read('start'),
    ordersPlaced: Number(await read('orders-placed')),
    ordersConfirmed: Number(await read('orders-confirmed')),
    revenue: Number(await read('revenue')),
    totalOrdersConfirmed: Number(await read('total-orders-confirmed')),
    totalRevenue: Number(await read('total-revenue')),
  };
}

describe('admin sales dashboard in a browser', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let storefront: StorefrontServer;
  let browser: Browser;
  let context: BrowserContext;

  before(async () => {
    const executablePath = ensureChromium({ log: console.log });
    // The gateway refuses browsers' requests from origins it does not know: the storefront's port is chosen first and allowed.
    const storefrontPort = await freePort();
    stack = await startSagaStack({ ALLOWED_ORIGINS: `http://127.0.0.1:${storefrontPort}` }, SERVICE_NAMES);
    system = systemOf(stack);
    await seedSaga(system, [PRODUCT_A, PRODUCT_B]);
    storefront = await startStorefront({
      port: storefrontPort,
      host: '127.0.0.1',
      gatewayUrl: stack.gateway!.url,
      jwtSecret: stack.config.jwtSecret,
      log: () => {},
    });
    browser = await chromium.launch({ executablePath, args: chromiumArgs() });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await storefront?.close();
    await stack?.[Symbol.asyncDispose]();
  });

  async function signIn(page: Page, user: string): Promise<void> {
    await page.selectOption('header select[name=user]', user);
    await page.click('header button[type=submit]');
    await page.locator(`[data-user="${user}"]`).waitFor();
  }

  it('only the demo admin sees the dashboard: signed out and customers are told so, and the header links it for the admin alone', async () => {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${storefront.url}#/admin`);
    await page.locator('.admin-only', { hasText: /for admins: please sign in as the demo user "admin"/ }).waitFor();
    assert.equal(await page.locator('#admin-link').count(), 0);

    await signIn(page, 'alice');
    await page.locator('.admin-only', { hasText: /for admins, and alice is not one/ }).waitFor();
    assert.equal(await page.locator('#admin-link').count(), 0, 'no link for a customer');
    assert.equal(await page.locator('.sales-figures').count(), 0);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.goto(`${storefront.url}#/`);
    await signIn(page, 'admin');
    await page.click('#admin-link');
    await page.waitForURL(/#\/admin$/);
    await page.locator('.sales-figures').waitFor();
    await page.close();
  });

  it('shows orders and revenue per hour live: orders confirmed through the API appear without a reload, and the top products name them', async () => {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${storefront.url}#/admin`);
    // Signed in as the admin by the test before; alone, this test signs in itself.
    await page.locator('header .account').waitFor();
    if ((await page.locator('[data-user="admin"]').count()) === 0) {
      if (await page.getByRole('button', { name: 'Sign out' }).isVisible()) await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, 'admin');
    }
    // Live once salesUpdated sent the current hour.
    await page.locator('.live-status[data-live="live"]').waitFor({ timeout: 15_000 });
    await page.locator('.sales-chart .chart canvas').first().waitFor();
    assert.equal(await page.locator('.sales-hours tbody tr').count(), 24);
    assert.equal(await page.locator('.sales-chart .chart').getAttribute('data-hours'), '24');
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 1;
    });
    const before = await shown(page);
    assert.equal(before.start, new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString(), 'the figures are the current hour');

    /**
     * Waits until the page counts `orders` more confirmed orders worth `revenue` more: in the hour it
     * showed before, unless the clock passed into the next hour meanwhile (then over the 24 hours).
     */
    const waitForShown = async (orders: number, revenue: number) =>
      waitFor(
        async () => {
          const now = await shown(page);
          const totals = now.totalOrdersConfirmed === before.totalOrdersConfirmed + orders && now.totalRevenue === before.totalRevenue + revenue;
          const hour = now.start !== before.start || (now.ordersConfirmed === before.ordersConfirmed + orders && now.revenue === before.revenue + revenue);
          return totals && hour ? now : undefined;
        },
        `the dashboard to show ${orders} more orders worth ${revenue} more`,
        20_000,
        () => shown(page),
      );

    const customer = await stack.token('dash-customer', ['customer']);
    const first = await placeOrder(system, customer, [{ sku: SKU_A, quantity: 2 }], 'tok_visa');
    await waitForStatus(system, customer, first.id, ['CONFIRMED']);
    const after = await waitForShown(1, 2 * PRICE_A);
    if (after.start === before.start) {
      // The table's row and the chart's data of this hour say the same.
      const row = page.locator(`.sales-hours tr[data-start="${before.start}"]`);
      assert.equal(await row.getAttribute('data-orders-confirmed'), String(before.ordersConfirmed + 1));
      assert.equal(await row.getAttribute('data-revenue'), String(before.revenue + 2 * PRICE_A));
      const chart = page.locator('.sales-chart .chart');
      assert.equal(await chart.getAttribute('data-current-start'), before.start);
      assert.equal(await chart.getAttribute('data-current-orders-confirmed'), String(before.ordersConfirmed + 1));
      assert.equal(Number(await chart.getAttribute('data-current-revenue')), (before.revenue + 2 * PRICE_A) / 100, 'the chart draws revenue in euros');
      assert.match(await page.locator('.sales-figures .this-hour').innerText(), new RegExp(`${before.ordersConfirmed + 1} orders confirmed · €`));
      assert.ok(after.ordersPlaced >= before.ordersPlaced + 1, 'the placed order is counted too');
    }
    // The top products are read again after the change: the product by name, with its units and revenue.
    const topA = page.locator(`.top-products tr[data-sku="${SKU_A}"]`);
    await topA.waitFor({ timeout: 10_000 });
    assert.equal(await topA.locator('.name').innerText(), PRODUCT_A.name);
    assert.equal(await topA.getAttribute('data-units'), '2');
    assert.equal(await topA.getAttribute('data-revenue'), String(2 * PRICE_A));

    // Two more at once, one of them declined: B joins the top products behind A, and the cancellation is counted.
    const [second, declined] = await Promise.all([
      placeOrder(system, customer, [{ sku: SKU_B, quantity: 1 }], 'tok_visa'),
      placeOrder(system, customer, [{ sku: SKU_B, quantity: 3 }], 'tok_decline'),
    ]);
    await waitForStatus(system, customer, second.id, ['CONFIRMED']);
    await waitForStatus(system, customer, declined.id, ['CANCELLED']);
    await waitForShown(2, 2 * PRICE_A + PRICE_B);
    await page.locator(`.top-products tr[data-sku="${SKU_B}"][data-units="1"]`).waitFor({ timeout: 10_000 });
    assert.deepEqual(
      await page.locator('.top-products tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-sku'))),
      [SKU_A, SKU_B],
      'most units first',
    );
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'the page was not reloaded');

    await page.screenshot({ path: path.join(IMAGES, 'admin-dashboard.png'), fullPage: true });
    assert.ok(statSync(path.join(IMAGES, 'admin-dashboard.png')).size > 10_000, 'a real screenshot');
    await page.close();
  });
});
