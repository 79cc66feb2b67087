/**
 * The storefront in a real browser (Debian Chromium through playwright-core) against the real
 * platform: every service and the gateway in this process, and the storefront server (server.ts)
 * in front of them, so the page reaches /graphql and its WebSocket through the proxy exactly as in
 * `npm start`. The cart is the cart service's (live in every tab of a customer), checkout is the
 * `checkout` mutation, and the profile page keeps the addresses checkout offers. Saves screenshots
 * for docs/images/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { statSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { chromiumArgs, screenshotDir } from '../../../test/support/browser.ts';
import { type RunningConsumer, SERVICE_NAMES, startConsumer } from '@swiftcart/platform';
import { loadServiceModule, type TestStack } from '../../../test/support/stack.ts';
import { admissionOf } from '../../../subgraphs/order/src/service.ts';
import {
  type SagaSystem,
  demoSkus,
  placeOrder,
  seedSaga,
  startSagaStack,
  stockOf,
  systemOf,
  waitFor,
  waitForReplica,
  waitForStock,
} from '../../../test/support/saga.ts';
import { fatal } from '../../../test/support/wait.ts';
import { ensureChromium, freePort } from '../../../scripts/infra.ts';
import { startStorefront, type StorefrontServer } from '../server.ts';

/**
 * The README's screenshots are refreshed with `UPDATE_SCREENSHOTS=1 npm test -- clients/storefront/test/storefront.test.ts`;
 * other runs write them to a temporary folder, so `npm test` leaves the checkout clean.
 */
const IMAGES = screenshotDir();
/**
 * The first page of the demo catalogue that `npm start` seeds (scripts/seed.ts): the names, prices
 * and stock a user sees, so the screenshots show the shop as it is.
 */
const DEMO = demoSkus(12);
const bySku = (sku: string) => DEMO.find((product) => product.sku === sku)!;
// Which three the tests use: B and C have less stock than a cart holds of one product (100), so a
// test can ask for more than there is.
const SKU_A = 'SKU-0003';
const SKU_B = 'SKU-0001';
const SKU_C = 'SKU-0002';
const ON_HAND_A = bySku(SKU_A).onHand;
const ON_HAND_B = bySku(SKU_B).onHand;
const ON_HAND_C = bySku(SKU_C).onHand;
const PRICE_A = bySku(SKU_A).priceAmount!;
const PRICE_B = bySku(SKU_B).priceAmount!;
/** Minor units as the page shows them, e.g. 6.36. */
const shown = (amount: number) => (amount / 100).toFixed(2);
/** placeOrder's admission threshold in this stack: the last test makes the saga lag past it. */
const ADMISSION_MAX_LAG_MS = 3_000;

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
    stack = await startSagaStack(
      {
        PAYMENT_PROVIDER_LATENCY_MS: '1500',
        PAYMENT_TIMEOUT_MS: '5000',
        ALLOWED_ORIGINS: `http://127.0.0.1:${storefrontPort}`,
        ORDER_ADMISSION_MAX_LAG_MS: String(ADMISSION_MAX_LAG_MS),
        ORDER_ADMISSION_PROBE_MS: '100',
        // One order waiting is the backlog here: the gate looks at the oldest PENDING order.
        ORDER_ADMISSION_LAG_RANK: '1',
      },
      SERVICE_NAMES,
    );
    system = systemOf(stack);
    await seedSaga(system, DEMO);
    // The cart service takes a sku only once its product event has reached the cart's catalogue replica.
    await waitForReplica(
      system,
      DEMO.map((product) => product.sku),
      20_000,
      'cart',
    );
    storefront = await startStorefront({
      port: storefrontPort,
      host: '127.0.0.1',
      gatewayUrl: stack.gateway!.url,
      jwtSecret: stack.config.jwtSecret,
      log: () => {},
    });
    browser = await chromium.launch({ executablePath, args: chromiumArgs() });
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

  /** A new tab on the first page of products, signed in as alice (the session is shared by the context's tabs). */
  async function productsPage(): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error('page error:', error));
    await page.goto(`${storefront.url}#/`);
    await page.locator(`.card[data-sku="${SKU_A}"] .stock`).waitFor();
    return page;
  }

  const badge = (page: Page, sku: string) => page.locator(`.card[data-sku="${sku}"] .stock`);

  /** The header's cart link once it shows `count` units: it follows the server's cart live. */
  const cartLink = (page: Page, count: number) => page.locator('#cart-link', { hasText: `Cart (${count})` });

  /** Empties a customer's server-side cart through the API, so a test starts from an empty cart whatever ran before. */
  async function emptyCartOf(customer: string): Promise<void> {
    const result = await system.graphql('mutation { clearCart { itemCount } }', { token: await stack.token(customer, ['customer']) });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  }

  /** Signs in as a demo customer with the header's form. */
  async function signIn(page: Page, customer: string): Promise<void> {
    await page.selectOption('header select[name=user]', customer);
    await page.click('header button[type=submit]');
    await page.locator(`[data-user="${customer}"]`).waitFor();
  }

  /** Adds one unit of `sku` on the products page and waits until the header counts `count` units in the cart. */
  async function addFromProducts(page: Page, sku: string, count: number): Promise<void> {
    await page.locator(`.card[data-sku="${sku}"] button.add:not([disabled])`).click();
    await cartLink(page, count).waitFor({ timeout: 10_000 });
  }

  /** From an empty cart: adds one `sku`, checks out with `paymentMethod` and returns the order id the page moved to. */
  async function checkout(page: Page, sku: string, paymentMethod: string): Promise<string> {
    await page.goto(`${storefront.url}#/`);
    await addFromProducts(page, sku, 1);
    await page.goto(`${storefront.url}#/cart`);
    await page.locator(`tr[data-sku="${sku}"][data-quantity="1"]`).waitFor();
    await page.selectOption('select[name=paymentMethod]', paymentMethod);
    await page.click('.checkout button[type=submit]');
    await page.waitForURL(/#\/orders\/.+/);
    return decodeURIComponent(new URL(page.url()).hash.replace('#/orders/', ''));
  }

  /** Marks the page's window: the mark is gone after a reload, so a page that still has it changed live. */
  async function markWindow(page: Page): Promise<void> {
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 1;
    });
  }

  async function assertNotReloaded(page: Page): Promise<void> {
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 1, 'the page was not reloaded');
  }

  it('signs in as a demo customer and lists products with their stock', async () => {
    const page = await productsPage();
    await signIn(page, 'alice');
    // Signing in renders the page again, and the header counts the customer's cart.
    await cartLink(page, 0).waitFor();
    await badge(page, SKU_C).waitFor();
    assert.equal(await page.locator('.card').count(), DEMO.length);
    assert.equal(await badge(page, SKU_A).getAttribute('data-available'), String(ON_HAND_A));
    assert.ok((await page.locator(`.card[data-sku="${SKU_A}"] .price`).innerText()).includes(shown(PRICE_A)));
    assert.ok((await page.locator(`.card[data-sku="${SKU_A}"]`).innerText()).includes(bySku(SKU_A).name!));
    await page.screenshot({ path: path.join(IMAGES, 'storefront-products.png') });
    assert.ok(statSync(path.join(IMAGES, 'storefront-products.png')).size > 10_000, 'a real screenshot');
    await page.close();
  });

  it('a cart filled in one tab shows live in another tab of the same customer, and changes there come back', async () => {
    await emptyCartOf('alice');
    // Two tabs of one context share alice's session: one on the cart page, one on the products.
    const cartTab = await context.newPage();
    cartTab.on('pageerror', (error) => console.error('page error:', error));
    await cartTab.goto(`${storefront.url}#/cart`);
    await cartTab.locator('.cart-lines .empty').waitFor();
    const shopTab = await productsPage();
    await cartLink(shopTab, 0).waitFor();
    await markWindow(cartTab);
    await markWindow(shopTab);

    await addFromProducts(shopTab, SKU_A, 1);
    await addFromProducts(shopTab, SKU_A, 2);
    await addFromProducts(shopTab, SKU_B, 3);
    // The cart tab follows cartUpdated: the lines, their names, the subtotal and the count arrive without a reload.
    const line = (sku: string, quantity: number) => cartTab.locator(`tr[data-sku="${sku}"][data-quantity="${quantity}"]`);
    await line(SKU_A, 2).waitFor({ timeout: 10_000 });
    await line(SKU_B, 1).waitFor({ timeout: 10_000 });
    const total = cartTab.locator('.cart-lines .total[data-item-count="3"]');
    await total.waitFor();
    assert.equal(await total.getAttribute('data-subtotal'), String(2 * PRICE_A + PRICE_B));
    assert.ok((await total.innerText()).includes(shown(2 * PRICE_A + PRICE_B)));
    assert.ok((await line(SKU_A, 2).locator('.name').innerText()).includes(bySku(SKU_A).name!));
    await cartLink(cartTab, 3).waitFor();

    // And back: the cart tab's quantity controls change the cart the shop tab's header counts.
    await line(SKU_B, 1).locator('button.inc').click();
    await line(SKU_B, 2).waitFor();
    await cartLink(shopTab, 4).waitFor({ timeout: 10_000 });
    // More than the stock: the line says so (a warning per line), and offers to reduce it.
    const quantity = cartTab.locator(`tr[data-sku="${SKU_B}"] input[type=number]`);
    await quantity.fill(String(ON_HAND_B + 1));
    await quantity.press('Tab');
    await cartLink(shopTab, ON_HAND_B + 3).waitFor({ timeout: 10_000 });
    const warning = line(SKU_B, ON_HAND_B + 1).locator('.warning[data-reason="OUT_OF_STOCK"]');
    await warning.waitFor();
    assert.match(await warning.innerText(), new RegExp(`only ${ON_HAND_B} of ${SKU_B} left`));
    await cartTab.screenshot({ path: path.join(IMAGES, 'storefront-cart.png') });
    await warning.getByRole('button', { name: `Reduce to ${ON_HAND_B}` }).click();
    await cartLink(shopTab, ON_HAND_B + 2).waitFor({ timeout: 10_000 });
    await line(SKU_B, ON_HAND_B).waitFor();
    assert.equal(await cartTab.locator('.warning').count(), 0, 'no warning once the quantity fits the stock');
    await line(SKU_A, 2).locator('button.remove').click();
    await cartLink(shopTab, ON_HAND_B).waitFor({ timeout: 10_000 });
    await cartTab.locator(`tr[data-sku="${SKU_A}"]`).waitFor({ state: 'detached' });

    // A third tab opened now reads the same cart.
    const lateTab = await context.newPage();
    await lateTab.goto(`${storefront.url}#/cart`);
    await lateTab.locator(`tr[data-sku="${SKU_B}"][data-quantity="${ON_HAND_B}"]`).waitFor({ timeout: 10_000 });
    assert.equal(await lateTab.locator('tbody tr').count(), 1);

    // Emptied elsewhere (here through the API): every tab shows it.
    await emptyCartOf('alice');
    await cartTab.locator('.cart-lines .empty').waitFor({ timeout: 10_000 });
    await lateTab.locator('.cart-lines .empty').waitFor({ timeout: 10_000 });
    await cartLink(shopTab, 0).waitFor({ timeout: 10_000 });
    await assertNotReloaded(cartTab);
    await assertNotReloaded(shopTab);
    await Promise.all([cartTab.close(), shopTab.close(), lateTab.close()]);
  });

  it('checks out the cart, follows the order live to CONFIRMED, and another tab sees the stock drop and the cart empty', async () => {
    await emptyCartOf('alice');
    const watcher = await productsPage();
    const buyer = await context.newPage();
    const orderId = await checkout(buyer, SKU_A, 'tok_visa');
    // A marker on window disappears on a reload: the status must change without one.
    await markWindow(buyer);
    const first = await buyer.locator('.order-status').getAttribute('data-status', { timeout: 10_000 });
    assert.ok(first === 'PENDING' || first === 'AWAITING_PAYMENT', `the order page first shows ${first}`);
    await buyer.locator('.order-status[data-status="CONFIRMED"]').waitFor({ timeout: 15_000 });
    await assertNotReloaded(buyer);
    // The ordered line left the server's cart: both tabs count none.
    await cartLink(buyer, 0).waitFor({ timeout: 10_000 });
    await cartLink(watcher, 0).waitFor({ timeout: 10_000 });
    const timeline = await buyer.locator('.timeline li').evaluateAll((items) => items.map((li) => li.getAttribute('data-status')));
    assert.deepEqual([...new Set(timeline)], ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED']);
    await buyer.screenshot({ path: path.join(IMAGES, 'storefront-order.png') });
    assert.ok(statSync(path.join(IMAGES, 'storefront-order.png')).size > 10_000, 'a real screenshot');
    // The other tab's badge follows stockLevelChanged.
    await watcher.locator(`.card[data-sku="${SKU_A}"] .stock[data-available="${ON_HAND_A - 1}"]`).waitFor({ timeout: 10_000 });
    // "My orders" lists it.
    await buyer.goto(`${storefront.url}#/orders`);
    await buyer.locator(`[data-order="${orderId}"]`).waitFor();
    await watcher.close();
    await buyer.close();
  });

  it('a declined payment shows the declined message and the stock comes back', async () => {
    await emptyCartOf('alice');
    const watcher = await productsPage();
    const buyer = await context.newPage();
    await checkout(buyer, SKU_B, 'tok_decline');
    await buyer.locator('.order-status[data-status="CANCELLED"]').waitFor({ timeout: 15_000 });
    assert.match(await buyer.locator('.outcome').innerText(), /payment was declined/i);
    await waitForStock(system, SKU_B, { available: ON_HAND_B, reserved: 0 });
    // The badge dropped when the stock was reserved and returns when it is released.
    await watcher.locator(`.card[data-sku="${SKU_B}"] .stock[data-available="${ON_HAND_B}"]`).waitFor({ timeout: 10_000 });
    assert.equal((await stockOf(system, SKU_B)).available, ON_HAND_B);
    await watcher.close();
    await buyer.close();
  });

  it('edits the profile, manages saved addresses, and checks out to a saved address chosen at checkout', async () => {
    await emptyCartOf('carol');
    const carol = await stack.token('carol', ['customer']);
    // A context of its own: carol's session, beside the other tests' alice and bob.
    const own = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    try {
      const page = await own.newPage();
      page.on('pageerror', (error) => console.error('page error:', error));
      await page.goto(`${storefront.url}#/profile`);
      await page.locator('#view .error', { hasText: /sign in/i }).waitFor();
      await signIn(page, 'carol');

      // Contact details and notification preferences, as the server keeps them.
      const profile = page.locator('form.profile');
      await profile.locator('input[name=name]').fill('Carol Example');
      await profile.locator('input[name=email]').fill('carol@example.com');
      await profile.locator('input[name=phone]').fill('+49 30 1234567');
      await profile.locator('input[name=notifySms]').check();
      await profile.locator('button[type=submit]').click();
      await profile.locator('.saved').waitFor();
      assert.equal(await profile.locator('input[name=phone]').inputValue(), '+49301234567', 'the form shows the number as the server keeps it');
      const me = await system.graphql('{ me { name email phone notificationPreferences { email sms } } }', { token: carol });
      assert.deepEqual(me.data?.me, {
        name: 'Carol Example',
        email: 'carol@example.com',
        phone: '+49301234567',
        notificationPreferences: { email: true, sms: true },
      });
      // A refused change is said in words, and nothing changes.
      await profile.locator('input[name=phone]').fill('12');
      await profile.locator('button[type=submit]').click();
      await profile.locator('.error', { hasText: /phone/i }).waitFor();
      await page.reload();
      assert.equal(await page.locator('form.profile input[name=name]').inputValue(), 'Carol Example');
      assert.equal(await page.locator('form.profile input[name=phone]').inputValue(), '+49301234567');

      // Saved addresses: add three, make one the default, edit it, remove another.
      const HOME = { name: 'Carol Example', line1: 'Rue de Rivoli 1', line2: '', city: 'Paris', postalCode: '75001', country: 'fr' };
      const WORK = { name: 'Carol Example', line1: 'Friedrichstraße 100', line2: '3rd floor', city: 'Berlin', postalCode: '10117', country: 'DE' };
      const OLD = { name: 'C. Example', line1: 'Old Street 5', line2: '', city: 'London', postalCode: 'EC1A 1BB', country: 'GB' };
      const saved = (address: typeof HOME) => page.locator('ul.addresses li[data-address]', { hasText: address.line1 });
      const addAddress = async (address: typeof HOME) => {
        const form = page.locator('form.add-address');
        for (const [name, value] of Object.entries(address)) await form.locator(`input[name=${name}]`).fill(value);
        await form.locator('button[type=submit]').click();
        await saved(address).waitFor();
      };
      await addAddress(HOME);
      assert.equal(await saved(HOME).getAttribute('data-default'), 'true', 'the first address is the default');
      await addAddress(WORK);
      await addAddress(OLD);
      await saved(WORK).locator('button.make-default').click();
      await page.locator('ul.addresses li[data-default="true"]', { hasText: WORK.line1 }).waitFor();
      assert.equal(await saved(HOME).getAttribute('data-default'), 'false');
      await saved(WORK).locator('button.edit').click();
      await page.fill('form.edit-address input[name=line2]', '4th floor');
      await page.click('form.edit-address button[type=submit]');
      await page.locator('ul.addresses li[data-default="true"]', { hasText: '4th floor' }).waitFor();
      await saved(OLD).locator('button.remove').click();
      await saved(OLD).waitFor({ state: 'detached' });
      assert.equal(await page.locator('ul.addresses li[data-address]').count(), 2);
      assert.match(await saved(HOME).innerText(), /Rue de Rivoli 1, 75001 Paris, FR/, 'the country as the server keeps it');
      await page.screenshot({ path: path.join(IMAGES, 'storefront-profile.png') });

      // Checkout offers the saved addresses, the default preselected, and a new address.
      await page.goto(`${storefront.url}#/`);
      await addFromProducts(page, SKU_A, 1);
      await page.goto(`${storefront.url}#/cart`);
      await page.locator(`tr[data-sku="${SKU_A}"]`).waitFor();
      const choice = (text: string) => page.locator('.saved-addresses label', { hasText: text }).locator('input[type=radio]');
      await choice(WORK.line1).waitFor();
      assert.equal(await choice(WORK.line1).isChecked(), true, 'the default address is preselected');
      assert.equal(await page.locator('.checkout .new-address').isHidden(), true);
      await choice('A new address').check();
      await page.locator('.checkout .new-address input[name=line1]').waitFor();
      await choice(HOME.line1).check();
      assert.equal(await page.locator('.checkout .new-address').isHidden(), true);
      await page.screenshot({ path: path.join(IMAGES, 'storefront-checkout.png'), fullPage: true });
      await page.selectOption('select[name=paymentMethod]', 'tok_visa');
      await page.click('.checkout button[type=submit]');
      // The order service learns saved addresses through events: until it knows this one, checkout
      // says so and the same attempt (same key) is sent again.
      let retries = 0;
      await waitFor(
        async () => {
          if (/#\/orders\/.+/.test(page.url())) return true;
          const error = page.locator('.checkout .error');
          if (!(await error.isVisible())) return undefined;
          const text = await error.innerText();
          if (!/does not know this saved address yet/.test(text)) throw fatal(`checkout failed: ${text}`);
          retries++;
          await page.click('.checkout button[type=submit]');
          return undefined;
        },
        'checkout to the saved address to place the order',
        20_000,
        () => ({ retries }),
      );
      const orderId = decodeURIComponent(new URL(page.url()).hash.replace('#/orders/', ''));
      await page.locator('.ship-to', { hasText: 'Carol Example, Rue de Rivoli 1, 75001 Paris, FR' }).waitFor({ timeout: 10_000 });
      const order = await system.graphql('query ($id: ID!) { order(id: $id) { shippingAddress { name line1 line2 city postalCode country } } }', {
        token: carol,
        variables: { id: orderId },
      });
      assert.deepEqual(order.data?.order?.shippingAddress, {
        name: HOME.name,
        line1: HOME.line1,
        line2: null,
        city: HOME.city,
        postalCode: HOME.postalCode,
        country: 'FR',
      });
      await page.locator('.order-status[data-status="CONFIRMED"]').waitFor({ timeout: 15_000 });
      await cartLink(page, 0).waitFor({ timeout: 10_000 });
    } finally {
      await own.close();
    }
  });

  it('says in words when adding or checking out is not possible', async () => {
    await emptyCartOf('bob');
    const page = await context.newPage();
    await page.goto(`${storefront.url}#/`);
    // Signed out: adding to the cart, and the cart page, ask to sign in instead of failing.
    await page.evaluate(() => localStorage.removeItem('swiftcart.session'));
    await page.reload();
    await page.goto(`${storefront.url}#/`);
    await page.locator(`.card[data-sku="${SKU_C}"] button.add`).click();
    await page.locator(`.card[data-sku="${SKU_C}"] .message`, { hasText: /sign in/i }).waitFor();
    await page.goto(`${storefront.url}#/cart`);
    await page.locator('#view .error', { hasText: /sign in/i }).waitFor();
    // Signing in shows bob's cart at once.
    await signIn(page, 'bob');
    await page.locator('.cart-lines .empty').waitFor();
    await page.goto(`${storefront.url}#/`);
    await addFromProducts(page, SKU_C, 1);
    await page.goto(`${storefront.url}#/cart`);
    const quantity = page.locator(`tr[data-sku="${SKU_C}"] input[type=number]`);
    // More units than a cart holds of one product: refused in words, and the line keeps its quantity.
    await quantity.fill('1000');
    await quantity.press('Tab');
    await page.locator('.cart-message', { hasText: /at most 100 of one product/ }).waitFor({ timeout: 10_000 });
    assert.equal(await quantity.inputValue(), '1');
    // More than the stock: the line warns, the order is placed, then rejected; the page says why.
    await quantity.fill(String(ON_HAND_C + 5));
    await quantity.press('Tab');
    await cartLink(page, ON_HAND_C + 5).waitFor({ timeout: 10_000 });
    await page.locator(`tr[data-sku="${SKU_C}"] .warning[data-reason="OUT_OF_STOCK"]`).waitFor();
    await page.click('.checkout button[type=submit]');
    const outcome = page.locator('.outcome, .checkout .error').first();
    await outcome.waitFor({ timeout: 15_000 });
    assert.match(await outcome.innerText(), /stock/i);
    await page.close();
  });

  it('a busy shop: the checkout button says it is retrying, and the order goes through once the saga catches up', { timeout: 90_000 }, async () => {
    // Inventory stops consuming: a placed order waits PENDING and the saga's lag grows past the
    // threshold, so placeOrder (behind checkout) answers OVERLOADED with a retry delay, as under a real overload.
    await emptyCartOf('bob');
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
    await addFromProducts(page, SKU_C, 1);
    await page.goto(`${storefront.url}#/cart`);
    await page.locator(`tr[data-sku="${SKU_C}"]`).waitFor();
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
