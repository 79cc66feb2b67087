/** "My orders": the signed-in customer's orders, newest first (`myOrders`). */
import { client } from '../api.ts';
import { h, money, when } from '../dom.ts';
import { describeError } from '../errors.ts';
import { currentSession } from '../session.ts';
import type { View } from './view.ts';

/** `#/orders`. */
export const ordersView: View = (root) => {
  const session = currentSession();
  if (!session) {
    root.replaceChildren(h('h2', {}, 'My orders'), h('p', { class: 'error' }, 'Please sign in to see your orders.'));
    return () => {};
  }
  root.replaceChildren(h('h2', {}, `${session.user}'s orders`), h('p', { class: 'status' }, 'Loading…'));
  let gone = false;
  void client.myOrders({ first: 20 }).then(
    ({ myOrders }) => {
      if (gone) return;
      const rows = myOrders.edges.map(({ node }) =>
        h(
          'tr',
          { 'data-order': node.id },
          h('td', {}, h('a', { href: `#/orders/${encodeURIComponent(node.id)}` }, node.id.slice(0, 8))),
          h('td', {}, when(node.createdAt)),
          h('td', {}, node.items.map((item) => `${item.quantity} × ${item.sku}`).join(', ')),
          h('td', {}, money(node.total.amount, node.total.currency)),
          h('td', {}, h('span', { class: `order-status ${node.status.toLowerCase()}` }, node.status)),
        ),
      );
      root.replaceChildren(
        h('h2', {}, `${session.user}'s orders`),
        rows.length ? h('table', { class: 'orders' }, h('tbody', {}, ...rows)) : h('p', {}, 'No orders yet. ', h('a', { href: '#/' }, 'Start shopping')),
        myOrders.totalCount > rows.length ? h('p', {}, `Showing the latest ${rows.length} of ${myOrders.totalCount}.`) : '',
      );
    },
    (error) => {
      if (!gone) root.replaceChildren(h('h2', {}, 'My orders'), h('p', { class: 'error', role: 'alert' }, describeError(error)));
    },
  );
  return () => {
    gone = true;
  };
};
