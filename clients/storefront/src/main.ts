/**
 * The storefront's entry: the header (navigation, live cart count, development sign-in) and a hash
 * router (`#/`, `#/cart`, `#/orders`, `#/orders/:id`, `#/profile`, and for admins `#/admin`, the
 * sales dashboard). Hash routes need no server-side routing, so the storefront server only serves files.
 */
import { cartCount, onCartChange } from './cart.ts';
import { h } from './dom.ts';
import { DEMO_USER_NAMES, currentSession, isAdmin, onSessionChange, signIn, signOut } from './session.ts';
import { adminView } from './views/admin.ts';
import { cartView } from './views/cart.ts';
import { orderView } from './views/order.ts';
import { ordersView } from './views/orders.ts';
import { productsView } from './views/products.ts';
import { profileView } from './views/profile.ts';
import type { Cleanup } from './views/view.ts';

const header = document.getElementById('header')!;
const notice = document.getElementById('notice')!;
const view = document.getElementById('view')!;

function showNotice(text: string | null): void {
  notice.textContent = text ?? '';
  notice.hidden = !text;
}

/** The cart link's text: the units in the server's cart once it is known. */
function cartLinkText(): string {
  const count = cartCount();
  return count === null ? 'Cart' : `Cart (${count})`;
}

function renderHeader(): void {
  const session = currentSession();
  const account = session
    ? h(
        'span',
        { class: 'account' },
        'Signed in as ',
        h('strong', { 'data-user': session.user }, session.user),
        ' ',
        h('button', { onclick: () => signOut() }, 'Sign out'),
      )
    : h(
        'form',
        {
          class: 'account',
          onsubmit: (event) => {
            event.preventDefault();
            const user = String(new FormData(event.target as HTMLFormElement).get('user'));
            signIn(user).then(
              () => showNotice(null),
              (error: Error) => showNotice(error.message),
            );
          },
        },
        h('label', {}, 'Demo user ', h('select', { name: 'user' }, ...DEMO_USER_NAMES.map((name) => h('option', { value: name }, name)))),
        h('button', { type: 'submit' }, 'Sign in'),
      );
  header.replaceChildren(
    h('a', { href: '#/', class: 'brand' }, 'SwiftCart'),
    h(
      'nav',
      {},
      h('a', { href: '#/' }, 'Products'),
      h('a', { href: '#/cart', id: 'cart-link' }, cartLinkText()),
      h('a', { href: '#/orders' }, 'My orders'),
      h('a', { href: '#/profile' }, 'My profile'),
      isAdmin(session) ? h('a', { href: '#/admin', id: 'admin-link' }, 'Sales dashboard') : '',
    ),
    account,
  );
}

let cleanup: Cleanup = () => {};

/** Renders the page the hash names, after stopping the previous page's subscriptions. */
function route(): void {
  cleanup();
  showNotice(null);
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const order = /^\/orders\/([^/]+)$/.exec(path);
  try {
    if (path === '/cart') cleanup = cartView(view, params);
    else if (path === '/orders') cleanup = ordersView(view, params);
    else if (path === '/profile') cleanup = profileView(view, params);
    else if (path === '/admin') cleanup = adminView(view, params);
    else if (order) cleanup = orderView(view, params, decodeURIComponent(order[1]));
    else cleanup = productsView(view, params);
  } catch (error) {
    // A bug in a view must not leave a blank page.
    console.error(error);
    cleanup = () => {};
    view.replaceChildren(h('p', { class: 'error' }, 'Something went wrong on this page. Please reload.'));
  }
}

onCartChange(() => {
  const link = document.getElementById('cart-link');
  if (link) link.textContent = cartLinkText();
});
// Pages that depend on who is signed in (cart, orders, profile, admin) are rendered again after a sign-in or sign-out;
// the live cart (./cart.ts) has already switched to the new customer by then: it listens first.
onSessionChange(() => {
  renderHeader();
  route();
});
window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (event) => {
  console.error(event.reason);
  showNotice('Something went wrong. Please try again.');
});
renderHeader();
route();
