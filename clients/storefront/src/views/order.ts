/**
 * One order: its status, lines, payment, shipment and timeline, kept live by `orderUpdated`
 * (the saga moves it PENDING → AWAITING_PAYMENT → CONFIRMED, or CANCELLED/REJECTED) with no reload.
 */
import type { OrderDetailsFragment } from '@swiftcart/sdk';
import { client } from '../api.ts';
import { addressText, h, money, when } from '../dom.ts';
import { describeError, describeOutcome } from '../errors.ts';
import { currentSession } from '../session.ts';
import { follow, type View } from './view.ts';

const STATUS_WORDS: Record<string, string> = {
  PENDING: 'Placed — reserving your items…',
  AWAITING_PAYMENT: 'Items reserved — authorising payment…',
  CONFIRMED: 'Confirmed — we are preparing your shipment.',
  SHIPPED: 'Shipped',
  DELIVERED: 'Delivered',
  CANCELLED: 'Cancelled',
  REJECTED: 'Not accepted',
};

function render(root: HTMLElement, order: OrderDetailsFragment): void {
  // A settled order may have several entries for its status (e.g. "payment declined", then
  // "stock released"): every reason counts, and the payment's own failure too.
  const reasons = order.timeline.filter((entry) => entry.status === order.status).map((entry) => entry.reason);
  const outcome = describeOutcome(order.status, [...reasons, order.payment?.failureReason].filter(Boolean).join('; '));
  root.replaceChildren(
    h('h2', {}, 'Order ', h('code', {}, order.id)),
    h(
      'p',
      { class: `order-status ${order.status.toLowerCase()}`, 'data-status': order.status, 'data-version': order.version },
      h('strong', {}, order.status),
      ' ',
      STATUS_WORDS[order.status] ?? '',
    ),
    outcome ? h('p', { class: 'outcome', role: 'status' }, outcome) : '',
    h(
      'table',
      { class: 'lines' },
      h(
        'tbody',
        {},
        ...order.items.map((item) =>
          h(
            'tr',
            {},
            h('td', {}, item.product.name, h('br'), h('small', {}, item.sku)),
            h('td', {}, `× ${item.quantity}`),
            h('td', {}, money(item.lineTotal.amount, item.lineTotal.currency)),
          ),
        ),
      ),
    ),
    h('p', { class: 'total' }, `Total: ${money(order.total.amount, order.total.currency)}`),
    h(
      'p',
      {},
      `Payment: ${order.payment ? order.payment.status.toLowerCase() : 'not started'}`,
      order.payment?.failureReason ? ` (${order.payment.failureReason})` : '',
    ),
    order.shipment
      ? h(
          'p',
          {},
          `Shipment: ${order.shipment.status.toLowerCase()}`,
          order.shipment.carrier ? ` with ${order.shipment.carrier} ${order.shipment.trackingNumber ?? ''}` : '',
        )
      : '',
    h('p', { class: 'ship-to' }, `Ship to: ${addressText(order.shippingAddress)}`),
    h('h3', {}, 'Timeline'),
    h(
      'ol',
      { class: 'timeline' },
      ...order.timeline.map((entry) =>
        h('li', { 'data-status': entry.status }, h('strong', {}, entry.status), ` — ${when(entry.at)}`, entry.reason ? ` — ${entry.reason}` : ''),
      ),
    ),
    h('p', {}, h('a', { href: '#/orders' }, '← My orders')),
  );
}

/** `#/orders/:id`. */
export const orderView: View = (root, _params, id) => {
  if (!currentSession()) {
    root.replaceChildren(h('p', { class: 'error' }, 'Please sign in to see your orders.'));
    return () => {};
  }
  root.replaceChildren(h('p', { class: 'status' }, 'Loading the order…'));
  let version = -1;
  // orderUpdated sends the order as it is now first, so one subscription is both the read and the live view.
  return follow(
    client.orderUpdated({ id: id! }),
    ({ orderUpdated }) => {
      if (orderUpdated.version < version) return;
      version = orderUpdated.version;
      render(root, orderUpdated);
    },
    (error) => {
      const message = h('p', { class: 'error', role: 'alert' }, describeError(error));
      if (version < 0) root.replaceChildren(message);
      else root.prepend(h('p', { class: 'error', role: 'alert' }, `Live updates stopped: ${describeError(error)} Reload to see the latest.`));
    },
  );
};
