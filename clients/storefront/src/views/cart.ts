/**
 * The cart and checkout: quantities, a shipping address, the payment method (the mock provider's
 * `tok_visa` authorises, `tok_decline` is declined), then `placeOrder` and on to the order page.
 */
import { client, onBusy } from '../api.ts';
import { cartLines, clearCart, onCartChange, setQuantity } from '../cart.ts';
import { h, money } from '../dom.ts';
import { describeError } from '../errors.ts';
import { currentSession } from '../session.ts';
import type { View } from './view.ts';

const ADDRESS = { name: 'Ada Lovelace', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' };

function field(label: string, name: string, value: string): HTMLElement {
  return h('label', {}, label, h('input', { name, value, required: true }));
}

/** `#/cart`. */
export const cartView: View = (root) => {
  const render = () => {
    const lines = cartLines();
    if (lines.length === 0) {
      root.replaceChildren(h('h2', {}, 'Your cart'), h('p', {}, 'Your cart is empty. ', h('a', { href: '#/' }, 'Browse products')));
      return;
    }
    const currency = lines[0].currency;
    const total = lines.reduce((sum, line) => sum + line.price * line.quantity, 0);
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    // One key per checkout attempt: a double click or a retry after a timeout places one order, not two.
    const idempotencyKey = crypto.randomUUID();
    const form = h(
      'form',
      { class: 'checkout', onsubmit: (event) => void checkout(event) },
      h('h3', {}, 'Shipping address'),
      field('Name', 'name', ADDRESS.name),
      field('Street', 'line1', ADDRESS.line1),
      field('City', 'city', ADDRESS.city),
      field('Postal code', 'postalCode', ADDRESS.postalCode),
      field('Country', 'country', ADDRESS.country),
      h(
        'label',
        {},
        'Payment',
        h(
          'select',
          { name: 'paymentMethod' },
          h('option', { value: 'tok_visa' }, 'Visa (test card, approved)'),
          h('option', { value: 'tok_decline' }, 'Test card that is declined'),
        ),
      ),
      error,
      h('button', { type: 'submit', class: 'primary' }, 'Place order'),
    );
    async function checkout(event: Event) {
      event.preventDefault();
      error.hidden = true;
      if (!currentSession()) {
        error.textContent = 'Please sign in (top right) to check out.';
        error.hidden = false;
        return;
      }
      const data = new FormData(form);
      const text = (name: string) => String(data.get(name) ?? '').trim();
      const button = form.querySelector('button[type=submit]') as HTMLButtonElement;
      button.disabled = true;
      button.textContent = 'Placing order…';
      // The SDK retries a busy shop by itself (same idempotency key): say so while it waits.
      const quiet = onBusy((notice) => {
        button.textContent = `The shop is busy, retrying in ${Math.ceil(notice.delayMs / 1000)} s…`;
      });
      try {
        const { placeOrder: order } = await client.placeOrder({
          input: {
            idempotencyKey,
            items: cartLines().map(({ sku, quantity }) => ({ sku, quantity })),
            shippingAddress: { name: text('name'), line1: text('line1'), city: text('city'), postalCode: text('postalCode'), country: text('country') },
            paymentMethod: text('paymentMethod'),
          },
        });
        clearCart();
        location.hash = `#/orders/${encodeURIComponent(order.id)}`;
      } catch (failure) {
        error.textContent = describeError(failure);
        error.hidden = false;
        button.disabled = false;
        button.textContent = 'Place order';
      } finally {
        quiet();
      }
    }
    root.replaceChildren(
      h('h2', {}, 'Your cart'),
      h(
        'table',
        { class: 'cart' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', {}, 'Price'), h('th', {}, 'Quantity'), h('th', {}, ''))),
        h(
          'tbody',
          {},
          ...lines.map((line) =>
            h(
              'tr',
              { 'data-sku': line.sku },
              h('td', {}, line.name, h('br'), h('small', {}, line.sku)),
              h('td', {}, money(line.price, line.currency)),
              h(
                'td',
                {},
                h('input', {
                  type: 'number',
                  min: 0,
                  max: 99,
                  value: line.quantity,
                  'aria-label': `Quantity of ${line.sku}`,
                  onchange: (event) => setQuantity(line.sku, Number((event.target as HTMLInputElement).value)),
                }),
              ),
              h('td', {}, h('button', { onclick: () => setQuantity(line.sku, 0) }, 'Remove')),
            ),
          ),
        ),
      ),
      h('p', { class: 'total' }, `Total: ${money(total, currency)} `, h('small', {}, '(the final price is confirmed at checkout)')),
      form,
    );
  };
  render();
  // Quantities and totals follow the cart (here or in another tab), but not while the customer is
  // typing an address: re-rendering would wipe what they typed.
  return onCartChange(() => {
    if (!root.querySelector('form.checkout')?.contains(document.activeElement)) render();
  });
};
