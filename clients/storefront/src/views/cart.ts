/**
 * The cart and checkout. The lines are the server's cart (`myCart` through the live `cartUpdated`,
 * so every tab of the customer shows the same cart): quantities (`updateCartItem`), removal,
 * subtotal, item count and each line's warnings. Checkout ships to a saved address (the default
 * preselected) or a new one, pays with the mock provider's `tok_visa` (authorises) or `tok_decline`
 * (declined), places the cart with `checkout` and goes on to the order page.
 */
import { isSwiftCartError } from '@swiftcart/sdk';
import { client, onBusy } from '../api.ts';
import { type Cart, type CartState, addToCart, cartState, onCartChange, removeFromCart, setQuantity } from '../cart.ts';
import { addressFromForm, addressText, h, money } from '../dom.ts';
import { describeError } from '../errors.ts';
import { currentSession } from '../session.ts';
import type { View } from './view.ts';

/** What the new-address fields start with: the demo shop's test address. */
const ADDRESS = { name: 'Ada Lovelace', line1: 'Hauptstraße 1', line2: '', city: 'Berlin', postalCode: '10115', country: 'DE' };

function field(label: string, name: string, value: string, required = true): HTMLElement {
  return h('label', {}, label, h('input', { name, value, required }));
}

/** The checkout form: where to ship (saved addresses or a new one), how to pay, and the button. */
function checkoutForm(): { form: HTMLFormElement; error: HTMLElement } {
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const savedChoices = h('div', { class: 'saved-addresses' }, h('p', { class: 'status' }, 'Loading your saved addresses…'));
  const newAddress = h(
    'fieldset',
    { class: 'new-address' },
    h('legend', {}, 'New address'),
    field('Name', 'name', ADDRESS.name),
    field('Street', 'line1', ADDRESS.line1),
    field('Apartment, floor (optional)', 'line2', ADDRESS.line2, false),
    field('City', 'city', ADDRESS.city),
    field('Postal code', 'postalCode', ADDRESS.postalCode),
    field('Country', 'country', ADDRESS.country),
  );
  const form = h(
    'form',
    { class: 'checkout' },
    h('h3', {}, 'Ship to'),
    savedChoices,
    newAddress,
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
  /** A disabled fieldset is neither validated nor sent: only the chosen address counts. */
  const showNewAddress = (show: boolean) => {
    newAddress.hidden = !show;
    newAddress.disabled = !show;
  };
  const choice = (value: string, checked: boolean, ...label: (Node | string)[]) =>
    h('label', { class: 'choice' }, h('input', { type: 'radio', name: 'shipTo', value, checked, onchange: () => showNewAddress(value === 'new') }), ...label);
  void client.me().then(
    ({ me }) => {
      if (me.addresses.length === 0) {
        savedChoices.replaceChildren();
        return;
      }
      const preselected = me.addresses.find((a) => a.isDefault) ?? me.addresses[0];
      savedChoices.replaceChildren(
        ...me.addresses.map((address) =>
          choice(
            address.id,
            address === preselected,
            h('span', { 'data-address': address.id }, addressText(address)),
            address.isDefault ? h('small', { class: 'badge' }, 'default') : '',
          ),
        ),
        choice('new', false, 'A new address'),
      );
      showNewAddress(false);
    },
    (failure) => {
      // Checkout still works with a new address.
      savedChoices.replaceChildren(h('p', { class: 'error' }, `Your saved addresses could not be loaded: ${describeError(failure)}`));
    },
  );
  return { form, error };
}

/** `#/cart`. */
export const cartView: View = (root) => {
  root.replaceChildren(h('h2', {}, 'Your cart'));
  if (!currentSession()) {
    root.append(h('p', { class: 'error' }, 'Please sign in (top right) to see your cart.'));
    return () => {};
  }
  const status = h('p', { class: 'status cart-status', role: 'status' });
  const message = h('p', { class: 'error cart-message', role: 'alert', hidden: true });
  const lines = h('div', { class: 'cart-lines' });
  const { form, error } = checkoutForm();
  form.hidden = true;
  root.append(status, message, lines, form);

  /** Lines with a change in flight: their controls stay disabled until it is answered. */
  const busy = new Set<string>();
  /** Changes in flight: checkout waits for them, so it places the cart the customer sees. */
  const inflight = new Set<Promise<unknown>>();
  let deferred = false;

  const showError = (failure: unknown) => {
    message.textContent = isSwiftCartError(failure) && failure.code === 'NOT_FOUND' ? 'That product is no longer in your cart.' : describeError(failure);
    message.hidden = false;
  };

  /** Runs one line's change; the cart shown comes from its answer or the live subscription. */
  const lineChange = async (sku: string, run: () => Promise<Cart>) => {
    message.hidden = true;
    busy.add(sku);
    render(cartState());
    const running = run();
    inflight.add(running);
    try {
      await running;
    } catch (failure) {
      showError(failure);
    } finally {
      inflight.delete(running);
      busy.delete(sku);
      // Also puts a refused quantity back to what the cart holds.
      render(cartState());
    }
  };

  const row = (cart: Cart, item: Cart['items'][number]) => {
    const disabled = busy.has(item.sku);
    const warnings = cart.warnings.filter((warning) => warning.sku === item.sku);
    const priceChanged = item.priceWhenAdded.amount !== item.unitPrice.amount || item.priceWhenAdded.currency !== item.unitPrice.currency;
    return h(
      'tr',
      { 'data-sku': item.sku, 'data-quantity': item.quantity },
      h(
        'td',
        {},
        h('span', { class: 'name' }, item.product.name),
        h('br'),
        h('small', {}, item.sku),
        ...warnings.map((warning) =>
          h(
            'p',
            { class: `warning ${warning.reason.toLowerCase()}`, 'data-reason': warning.reason, role: 'note' },
            warning.message,
            warning.reason === 'OUT_OF_STOCK' && warning.available !== null && warning.available > 0
              ? h(
                  'button',
                  { type: 'button', disabled, onclick: () => void lineChange(item.sku, () => setQuantity(item.sku, warning.available!)) },
                  `Reduce to ${warning.available}`,
                )
              : '',
          ),
        ),
      ),
      h(
        'td',
        {},
        money(item.unitPrice.amount, item.unitPrice.currency),
        priceChanged ? h('small', { class: 'was' }, ` (was ${money(item.priceWhenAdded.amount, item.priceWhenAdded.currency)})`) : '',
      ),
      h(
        'td',
        { class: 'quantity' },
        h(
          'button',
          {
            type: 'button',
            class: 'dec',
            disabled,
            'aria-label': `One less ${item.sku}`,
            onclick: () => void lineChange(item.sku, () => setQuantity(item.sku, item.quantity - 1)),
          },
          '−',
        ),
        h('input', {
          type: 'number',
          min: 0,
          value: item.quantity,
          disabled,
          'aria-label': `Quantity of ${item.sku}`,
          onchange: (event) => {
            const input = event.target as HTMLInputElement;
            const quantity = Number(input.value);
            if (!Number.isInteger(quantity) || quantity < 0) {
              message.textContent = 'Please enter a whole number of 0 or more (0 removes the product).';
              message.hidden = false;
              input.value = String(item.quantity);
              return;
            }
            void lineChange(item.sku, () => setQuantity(item.sku, quantity));
          },
        }),
        h(
          'button',
          {
            type: 'button',
            class: 'inc',
            disabled,
            'aria-label': `One more ${item.sku}`,
            onclick: () => void lineChange(item.sku, () => addToCart(item.sku, 1)),
          },
          '+',
        ),
      ),
      h('td', { class: 'line-total' }, money(item.lineTotal.amount, item.lineTotal.currency)),
      h(
        'td',
        {},
        h('button', { type: 'button', class: 'remove', disabled, onclick: () => void lineChange(item.sku, () => removeFromCart(item.sku)) }, 'Remove'),
      ),
    );
  };

  function render(state: CartState): void {
    // Never while a quantity is being typed: the live cart would wipe it. It is shown once the field is left.
    if (document.activeElement instanceof HTMLInputElement && lines.contains(document.activeElement)) {
      deferred = true;
      return;
    }
    deferred = false;
    if (state.status === 'signed-out') return;
    status.textContent =
      state.status === 'loading'
        ? 'Loading your cart…'
        : state.status === 'stopped'
          ? `Live updates of your cart paused: ${state.error ? describeError(state.error) : 'the connection ended.'}${state.retrying ? ' Reconnecting…' : ''}`
          : '';
    status.hidden = state.status === 'live';
    const cart = state.status === 'live' || state.status === 'stopped' ? state.cart : null;
    if (!cart) return;
    if (cart.items.length === 0) {
      lines.replaceChildren(h('p', { class: 'empty' }, 'Your cart is empty. ', h('a', { href: '#/' }, 'Browse products')));
      form.hidden = true;
      return;
    }
    lines.replaceChildren(
      h(
        'table',
        { class: 'cart' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Product'), h('th', {}, 'Price'), h('th', {}, 'Quantity'), h('th', {}, 'Total'), h('th', {}, ''))),
        h('tbody', {}, ...cart.items.map((item) => row(cart, item))),
      ),
      h(
        'p',
        { class: 'total', 'data-item-count': cart.itemCount, 'data-subtotal': cart.subtotal.amount },
        `Subtotal: ${money(cart.subtotal.amount, cart.subtotal.currency)} for ${cart.itemCount} ${cart.itemCount === 1 ? 'item' : 'items'} `,
        h('small', {}, '(the final price is confirmed at checkout)'),
      ),
    );
    form.hidden = false;
  }

  lines.addEventListener('focusout', () => {
    // After the change event of the field that was left, which may start a change of its own.
    setTimeout(() => {
      if (deferred) render(cartState());
    });
  });

  // One key per checkout attempt, kept across retries (a double click, a retry after a timeout or a
  // refusal): a second submission answers the order the first placed instead of placing another.
  let idempotencyKey = crypto.randomUUID();
  const checkout = async (event: Event) => {
    event.preventDefault();
    error.hidden = true;
    message.hidden = true;
    const data = new FormData(form);
    const text = (name: string) => String(data.get(name) ?? '').trim();
    const shipTo = text('shipTo') || 'new';
    const button = form.querySelector('button[type=submit]') as HTMLButtonElement;
    button.disabled = true;
    button.textContent = 'Placing order…';
    // The SDK retries a busy shop by itself (same idempotency key): say so while it waits.
    const quiet = onBusy((notice) => {
      button.textContent = `The shop is busy, retrying in ${Math.ceil(notice.delayMs / 1000)} s…`;
    });
    try {
      await Promise.allSettled(inflight);
      const { checkout: order } = await client.checkout({
        input: {
          idempotencyKey,
          paymentMethod: text('paymentMethod'),
          ...(shipTo === 'new'
            ? {
                shippingAddress: addressFromForm(form),
              }
            : { shippingAddressId: shipTo }),
        },
      });
      // The ordered lines have left the cart: the live cart says so in every tab.
      location.hash = `#/orders/${encodeURIComponent(order.id)}`;
    } catch (failure) {
      // The key named an order placed earlier for another cart: the next attempt is a new checkout.
      if (isSwiftCartError(failure) && failure.code === 'IDEMPOTENCY_KEY_REUSED') idempotencyKey = crypto.randomUUID();
      error.textContent = describeError(failure);
      error.hidden = false;
      button.disabled = false;
      button.textContent = 'Place order';
    } finally {
      quiet();
    }
  };
  form.addEventListener('submit', (event) => void checkout(event));

  render(cartState());
  return onCartChange(render);
};
