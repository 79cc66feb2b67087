/**
 * The cart's pure rules, given / when / then: what a cart shows from its lines and the catalogue
 * replica, and which lines need the customer's attention.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CatalogueEntry } from '@swiftcart/platform';
import { cartWarnings, viewCart } from '../src/carts.ts';
import type { CartRecord } from '../src/store.ts';

const ADDED = new Date('2026-12-01T10:00:00.000Z');
const eur = (amount: number) => ({ amount, currency: 'EUR' });
const line = (sku: string, quantity: number, priceWhenAdded: number) => ({ sku, quantity, priceWhenAdded: eur(priceWhenAdded), addedAt: ADDED });
const entry = (sku: string, price: number, status: CatalogueEntry['status'] = 'ACTIVE'): [string, CatalogueEntry] => [
  sku,
  { sku, price: eur(price), status, version: 1 },
];
const cart = (...lines: ReturnType<typeof line>[]): CartRecord => ({ customerId: 'c-1', lines, version: 7, updatedAt: ADDED });

describe('viewCart', () => {
  it('given no lines, shows an empty cart in EUR', () => {
    const view = viewCart({ customerId: 'c-1', lines: [], version: 0, updatedAt: null }, new Map());
    assert.deepEqual(
      { items: view.items, subtotal: view.subtotal, itemCount: view.itemCount, updatedAt: view.updatedAt },
      { items: [], subtotal: eur(0), itemCount: 0, updatedAt: null },
    );
  });

  it('prices every line at the current catalogue price, and adds them up', () => {
    const view = viewCart(cart(line('A', 2, 1000), line('B', 3, 250)), new Map([entry('A', 1200), entry('B', 250)]));
    assert.deepEqual(
      view.items.map((i) => [i.sku, i.unitPrice.amount, i.lineTotal.amount]),
      [
        ['A', 1200, 2400],
        ['B', 250, 750],
      ],
    );
    assert.deepEqual(view.subtotal, eur(3150));
    assert.equal(view.itemCount, 5);
    assert.equal(view.version, 7);
  });

  it('keeps the price when added for a line the catalogue no longer sells, or no longer knows', () => {
    const view = viewCart(cart(line('GONE', 1, 500), line('LOST', 1, 300)), new Map([entry('GONE', 0, 'DISCONTINUED')]));
    assert.deepEqual(
      view.items.map((i) => [i.sku, i.unitPrice.amount, i.status]),
      [
        ['GONE', 500, 'DISCONTINUED'],
        ['LOST', 300, null],
      ],
    );
  });
});

describe('cartWarnings', () => {
  const view = viewCart(
    cart(line('LOW', 5, 100), line('DEARER', 1, 1000), line('GONE', 1, 100), line('FINE', 1, 100)),
    new Map([entry('LOW', 100), entry('DEARER', 1250), entry('GONE', 100, 'DISCONTINUED'), entry('FINE', 100)]),
  );

  it('names lines short of stock, repriced and discontinued, in cart order', () => {
    const warnings = cartWarnings(
      view,
      new Map([
        ['LOW', 3],
        ['DEARER', 10],
        ['FINE', 1],
      ]),
    );
    assert.deepEqual(
      warnings.map((w) => [w.sku, w.reason, w.available]),
      [
        ['LOW', 'OUT_OF_STOCK', 3],
        ['DEARER', 'PRICE_CHANGED', null],
        ['GONE', 'DISCONTINUED', null],
      ],
    );
    assert.equal(warnings[0].message, 'only 3 of LOW left, 5 in the cart');
    assert.equal(warnings[1].message, 'the price of DEARER changed from 10.00 EUR to 12.50 EUR');
  });

  it('says "out of stock" when none are left', () => {
    const [warning] = cartWarnings(view, new Map([['LOW', 0]]));
    assert.deepEqual([warning.reason, warning.message, warning.available], ['OUT_OF_STOCK', 'LOW is out of stock', 0]);
  });

  it('leaves stock out when the inventory could not be asked, and still warns of prices', () => {
    assert.deepEqual(
      cartWarnings(view, null).map((w) => w.reason),
      ['PRICE_CHANGED', 'DISCONTINUED'],
    );
  });
});
