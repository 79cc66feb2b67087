/**
 * The cart's rules: what may go in (a sku the catalogue sells, within the limits), what a cart shows
 * (current prices, warnings), and checkout through the order service.
 */
import { randomUUID } from 'node:crypto';
import {
  ErrorCode,
  PEER_TIMEOUT_MS,
  apiError,
  badInput,
  checkIdempotencyKey,
  checkSku,
  retryPolicy,
  runPolicy,
  readCatalogue,
  type CatalogueEntry,
  type EntityManager,
  type Money,
  type PeerClient,
  type Viewer,
} from '@swiftcart/platform';
import type { CartSettings } from './settings.ts';
import type { CartChange, CartLineRecord, CartRecord, CartStore, OrderedLine } from './store.ts';

/** The currency of an empty cart's subtotal (the catalogue's one currency today). */
export const DEFAULT_CURRENCY = 'EUR';

/** One line as the API shows it. */
export interface CartItemView extends CartLineRecord {
  /** The current catalogue price; the price when added if the replica has lost the sku. */
  readonly unitPrice: Money;
  readonly lineTotal: Money;
  readonly status: CatalogueEntry['status'] | null;
}

/** A cart as the API shows it; warnings are worked out on demand (they need the inventory). */
export interface CartView {
  readonly customerId: string;
  readonly version: number;
  readonly items: readonly CartItemView[];
  readonly subtotal: Money;
  readonly itemCount: number;
  readonly updatedAt: Date | null;
  /**
   * The units available per sku, when the request wants the warnings: asked of the inventory as
   * soon as the cart's skus are known, beside the catalogue read, not after it.
   */
  readonly stock?: Promise<ReadonlyMap<string, number> | null>;
}

/** Why a line needs attention; mirrors the GraphQL enum. */
export type CartWarningReason = 'OUT_OF_STOCK' | 'PRICE_CHANGED' | 'DISCONTINUED';

/** A line that needs the customer's attention. */
export interface CartWarning {
  readonly sku: string;
  readonly reason: CartWarningReason;
  readonly message: string;
  readonly available: number | null;
}

const formatMoney = (money: Money) => `${(money.amount / 100).toFixed(2)} ${money.currency}`;

/** The cart with current prices from the catalogue replica. */
export function viewCart(cart: CartRecord, catalogue: ReadonlyMap<string, CatalogueEntry>): CartView {
  const items = cart.lines.map((line): CartItemView => {
    const entry = catalogue.get(line.sku);
    const unitPrice = entry && entry.status === 'ACTIVE' ? entry.price : line.priceWhenAdded;
    return { ...line, unitPrice, lineTotal: { amount: unitPrice.amount * line.quantity, currency: unitPrice.currency }, status: entry?.status ?? null };
  });
  const currency = items[0]?.unitPrice.currency ?? DEFAULT_CURRENCY;
  return {
    customerId: cart.customerId,
    version: cart.version,
    items,
    subtotal: { amount: items.reduce((sum, item) => sum + item.lineTotal.amount, 0), currency },
    itemCount: items.reduce((sum, item) => sum + item.quantity, 0),
    updatedAt: cart.updatedAt,
  };
}

/**
 * The lines that need attention, in cart order: discontinued, fewer units available than in the
 * cart (only when `available` is known), or priced otherwise than when added.
 */
export function cartWarnings(cart: CartView, available: ReadonlyMap<string, number> | null): CartWarning[] {
  const warnings: CartWarning[] = [];
  for (const item of cart.items) {
    if (item.status === 'DISCONTINUED') {
      warnings.push({ sku: item.sku, reason: 'DISCONTINUED', message: `${item.sku} is no longer sold: remove it to check out`, available: null });
      continue;
    }
    const units = available?.get(item.sku);
    if (units !== undefined && units < item.quantity) {
      const message = units === 0 ? `${item.sku} is out of stock` : `only ${units} of ${item.sku} left, ${item.quantity} in the cart`;
      warnings.push({ sku: item.sku, reason: 'OUT_OF_STOCK', message, available: units });
    }
    const before = item.priceWhenAdded;
    if (before.amount !== item.unitPrice.amount || before.currency !== item.unitPrice.currency) {
      const message = `the price of ${item.sku} changed from ${formatMoney(before)} to ${formatMoney(item.unitPrice)}`;
      warnings.push({ sku: item.sku, reason: 'PRICE_CHANGED', message, available: null });
    }
  }
  return warnings;
}

/** What the cart's commands need. */
export interface CartDeps {
  readonly store: CartStore;
  readonly em: EntityManager;
  readonly settings: CartSettings;
}

/** Reads a cart and prices it from the catalogue replica; `stock`, when given, is asked for at the same time. */
export async function loadCart(
  deps: Pick<CartDeps, 'store' | 'em'>,
  customerId: string,
  stock?: (skus: readonly string[]) => Promise<ReadonlyMap<string, number> | null>,
): Promise<CartView> {
  const cart = await deps.store.read(customerId);
  const skus = cart.lines.map((line) => line.sku);
  const available = stock && skus.length > 0 ? stock(skus) : undefined;
  const view = viewCart(cart, await readCatalogue(deps.em, skus));
  return available ? { ...view, stock: available } : view;
}

/** Throws the error of a refused change; the cart is as it was. */
function refuse(change: CartChange, sku: string): void {
  if (change.refused === undefined) return;
  if (change.refused === 'NOT_IN_CART') throw apiError(ErrorCode.NotFound, `"${sku}" is not in the cart`, { id: sku });
  if (change.refused === 'LINE_LIMIT') {
    throw apiError(ErrorCode.CartLimitExceeded, `A cart holds at most ${change.limit} different products`, { limit: change.limit });
  }
  throw apiError(ErrorCode.CartLimitExceeded, `A cart holds at most ${change.limit} units of one product (${change.quantity} of ${sku} in it now)`, {
    limit: change.limit,
    field: 'quantity',
  });
}

function checkQuantity(quantity: number, min: number): void {
  if (!Number.isInteger(quantity) || quantity < min) throw badInput(`"quantity" must be ${min} or more`, 'quantity');
}

/** addToCart: the sku must be sold now; its current price becomes the line's price when added. */
export async function addToCart(deps: CartDeps, customerId: string, sku: string, quantity: number): Promise<void> {
  checkSku(sku);
  checkQuantity(quantity, 1);
  const entry = (await readCatalogue(deps.em, [sku])).get(sku);
  if (!entry) throw badInput(`"sku": no product "${sku}" in the catalogue`, 'sku');
  if (entry.status !== 'ACTIVE') throw apiError(ErrorCode.ProductUnavailable, `"${sku}" is no longer sold`, { field: 'sku' });
  const { maxQuantity, maxLines } = deps.settings;
  refuse(await deps.store.add(customerId, { sku, quantity, price: entry.price }, { maxQuantity, maxLines }), sku);
}

/** updateCartItem: a new quantity for a line in the cart; 0 removes it. */
export async function updateCartItem(deps: CartDeps, customerId: string, sku: string, quantity: number): Promise<void> {
  checkSku(sku);
  checkQuantity(quantity, 0);
  refuse(await deps.store.set(customerId, sku, quantity, deps.settings.maxQuantity), sku);
}

/** removeFromCart. */
export async function removeFromCart(deps: CartDeps, customerId: string, sku: string): Promise<void> {
  checkSku(sku);
  await deps.store.remove(customerId, sku);
}

/** What checkout is given; the address and payment go to placeOrder as they are. */
export interface CheckoutArgs {
  readonly idempotencyKey: string;
  readonly shippingAddressId?: string | null;
  readonly shippingAddress?: Readonly<Record<string, unknown>> | null;
  readonly paymentMethod: string;
}

/** The PlaceOrderInput a checkout sends; recorded before it is sent, so that a retry sends it again. */
export interface PlaceOrderRequest {
  readonly idempotencyKey: string;
  readonly items: readonly OrderedLine[];
  readonly shippingAddressId: string | null;
  readonly shippingAddress: Readonly<Record<string, unknown>> | null;
  readonly paymentMethod: string;
}

const PLACE_ORDER = /* GraphQL */ `
  mutation CheckoutCart($input: PlaceOrderInput!) {
    placeOrder(input: $input) {
      id
    }
  }
`;

/** How long one checkout holds its cart: beyond the order service's answer ({@link PEER_TIMEOUT_MS}), so a slow answer never lets a second checkout in. */
const CHECKOUT_LOCK_MS = 3 * PEER_TIMEOUT_MS;

/** How long a second checkout of the same cart waits for the first one to end. */
const checkoutQueue = retryPolicy({ attempts: 40, baseMs: 25, maxMs: 250 });

/** Errors after which nobody knows whether the order service placed the order: its record stays, for the retry. */
const UNCERTAIN_CODES: ReadonlySet<unknown> = new Set([ErrorCode.ServiceUnavailable, ErrorCode.InternalServerError]);

/**
 * checkout: the cart's lines go to the order service's placeOrder (its validation, admission and
 * prices) under the checkout's key, one checkout of a cart at a time (a second waits, then finds
 * the lines gone). The request is recorded for the key before it is sent; once placeOrder has
 * accepted it, one script records the order and takes exactly those lines out of the cart (a line
 * added meanwhile stays). A retry of the key answers the recorded order, or, when the outcome was
 * unknown (a timeout, a crash), sends the recorded request again, which placeOrder's own
 * idempotency answers with the same order: never a second order, whatever the cart has become.
 * A refusal by the order service forgets the request, so that the next try reads the cart again.
 */
export async function checkout(deps: CartDeps & { readonly orders: PeerClient }, viewer: Viewer, customerId: string, input: CheckoutArgs): Promise<string> {
  const { store } = deps;
  const key = input.idempotencyKey;
  checkIdempotencyKey(key);
  const done = await store.checkoutRecord<PlaceOrderRequest>(customerId, key);
  if (done && 'placed' in done) return done.placed;
  const token = randomUUID();
  await runPolicy(checkoutQueue, async () => {
    if (!(await store.lock(customerId, token, CHECKOUT_LOCK_MS)))
      throw apiError(ErrorCode.ServiceUnavailable, 'Another checkout of this cart is under way: try again in a moment');
  });
  try {
    let request: PlaceOrderRequest;
    const recorded = await store.checkoutRecord<PlaceOrderRequest>(customerId, key);
    if (recorded && 'placed' in recorded) return recorded.placed;
    if (recorded) {
      request = recorded.placing;
    } else {
      const cart = await store.read(customerId);
      if (cart.lines.length === 0) throw apiError(ErrorCode.CartEmpty, 'The cart is empty: add something before checking out');
      request = {
        idempotencyKey: key,
        items: cart.lines.map((line) => ({ sku: line.sku, quantity: line.quantity })),
        shippingAddressId: input.shippingAddressId ?? null,
        shippingAddress: input.shippingAddress ?? null,
        paymentMethod: input.paymentMethod,
      };
      await store.beginCheckout(customerId, key, request);
    }
    let orderId: string;
    try {
      orderId = (await deps.orders.request<{ placeOrder: { id: string } }>(PLACE_ORDER, { input: request }, { as: viewer })).placeOrder.id;
    } catch (error) {
      if (!UNCERTAIN_CODES.has((error as { extensions?: { code?: unknown } }).extensions?.code)) await store.abandonCheckout(customerId, key, request);
      throw error;
    }
    return await store.takeOrdered(customerId, key, orderId, request.items);
  } finally {
    await store.unlock(customerId, token);
  }
}

/** An order as the cart names it: by id (the order subgraph resolves the rest). */
export interface OrderReference {
  readonly id: string;
}

/** A product as the cart names it: by sku (the product and inventory subgraphs resolve the rest). */
export interface ProductReference {
  readonly sku: string;
}
