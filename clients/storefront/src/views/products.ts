/**
 * The catalogue: a page of products (browse, or search by name or sku), each with a stock badge
 * kept live by `stockLevelChanged` for the skus on the page, and a button that adds one unit to the
 * signed-in customer's cart (`addToCart`).
 */
import type { ProductSummaryFragment } from '@swiftcart/sdk';
import { client } from '../api.ts';
import { addToCart, SignInRequired } from '../cart.ts';
import { h, money } from '../dom.ts';
import { describeError } from '../errors.ts';
import { currentSession } from '../session.ts';
import { follow, type Cleanup, type View } from './view.ts';

const PAGE_SIZE = 12;

function badgeText(available: number): string {
  return available <= 0 ? 'Out of stock' : available < 5 ? `Only ${available} left` : `${available} in stock`;
}

/** Updates a stock badge and the Add button next to it (nothing to add when out of stock). */
function showStock(card: HTMLElement, available: number): void {
  const badge = card.querySelector<HTMLElement>('.stock')!;
  badge.textContent = badgeText(available);
  badge.dataset.available = String(available);
  badge.className = `stock ${available <= 0 ? 'out' : available < 5 ? 'low' : 'in'}`;
  card.querySelector<HTMLButtonElement>('button.add')!.disabled = available <= 0;
}

/** Adds one unit to the server's cart; the button says how it went, the card's message why it did not. */
async function add(element: HTMLElement, button: HTMLButtonElement, sku: string): Promise<void> {
  const message = element.querySelector<HTMLElement>('.message')!;
  message.hidden = true;
  if (!currentSession()) {
    message.textContent = 'Please sign in (top right) to add to your cart.';
    message.hidden = false;
    return;
  }
  button.disabled = true;
  button.textContent = 'Adding…';
  try {
    await addToCart(sku);
    button.textContent = 'Added ✓';
    setTimeout(() => {
      button.textContent = 'Add to cart';
    }, 1200);
  } catch (error) {
    button.textContent = 'Add to cart';
    message.textContent = error instanceof SignInRequired ? error.message : describeError(error);
    message.hidden = false;
  } finally {
    // Out of stock meanwhile: the stock badge's data says so.
    button.disabled = Number(element.querySelector<HTMLElement>('.stock')!.dataset.available) <= 0;
  }
}

function card(product: ProductSummaryFragment): HTMLElement {
  const element: HTMLElement = h(
    'li',
    { class: 'card', 'data-sku': product.sku },
    h('h3', {}, product.name),
    h('p', { class: 'sku' }, product.sku),
    h('p', { class: 'price' }, money(product.price.amount, product.price.currency)),
    h('p', { class: 'stock' }),
    h('button', { class: 'add', onclick: (event) => void add(element, event.currentTarget as HTMLButtonElement, product.sku) }, 'Add to cart'),
    h('p', { class: 'message error', role: 'alert', hidden: true }),
  );
  showStock(element, product.stock.available);
  return element;
}

/** `#/` (browse) and `#/?q=...` (search); `after` pages forward. */
export const productsView: View = (root, params) => {
  const q = params.get('q') ?? '';
  const after = params.get('after');
  const status = h('p', { class: 'status' }, 'Loading products…');
  const list = h('ul', { class: 'products' });
  const more = h('p', { class: 'pager' });
  root.replaceChildren(
    h(
      'form',
      {
        class: 'search',
        role: 'search',
        onsubmit: (event) => {
          event.preventDefault();
          const value = new FormData(event.target as HTMLFormElement).get('q')?.toString().trim() ?? '';
          location.hash = value ? `#/?q=${encodeURIComponent(value)}` : '#/';
        },
      },
      h('input', { name: 'q', type: 'search', placeholder: 'Search by name or sku', value: q, 'aria-label': 'Search' }),
      h('button', {}, 'Search'),
    ),
    status,
    list,
    more,
  );
  let stopStock: Cleanup = () => {};
  let gone = false;
  void (async () => {
    try {
      const { products } = q
        ? await client.searchProducts({ filter: { search: q, status: 'ACTIVE' }, first: PAGE_SIZE, after })
        : await client.browseProducts({ first: PAGE_SIZE, after });
      if (gone) return;
      const nodes = products.edges.map((edge) => edge.node);
      status.textContent = q ? `${products.totalCount} product(s) match “${q}”.` : `${products.totalCount} products.`;
      list.replaceChildren(...nodes.map(card));
      if (products.pageInfo.hasNextPage && products.pageInfo.endCursor) {
        const next = new URLSearchParams(q ? { q } : {});
        next.set('after', products.pageInfo.endCursor);
        more.replaceChildren(h('a', { href: `#/?${next}` }, 'Next page →'));
      }
      if (nodes.length === 0) return;
      // Keep the highest version per sku: after a reconnection the current level comes again, never older.
      const versions = new Map(nodes.map((node) => [node.sku, node.stock.version]));
      stopStock = follow(
        client.stockLevelChanged({ skus: nodes.map((node) => node.sku) }),
        ({ stockLevelChanged: level }) => {
          if (level.version < (versions.get(level.sku) ?? 0)) return;
          versions.set(level.sku, level.version);
          const element = list.querySelector<HTMLElement>(`[data-sku="${CSS.escape(level.sku)}"]`);
          if (element) showStock(element, level.available);
        },
        (error) => {
          status.textContent = `Live stock paused: ${describeError(error)}`;
        },
      );
    } catch (error) {
      if (!gone) status.replaceChildren(h('span', { class: 'error' }, describeError(error)));
    }
  })();
  return () => {
    gone = true;
    stopStock();
  };
};
