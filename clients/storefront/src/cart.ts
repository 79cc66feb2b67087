/**
 * The signed-in customer's cart, kept by the cart service and shared by every tab and device.
 * One `cartUpdated` subscription per page follows it while someone is signed in (the cart as it is
 * now, then after every change from any tab), so the header's count and the cart page stay live.
 * Changes are mutations; their answers are shown at once, and the subscription confirms them.
 */
import type { CartDetailsFragment } from '@swiftcart/sdk';
import { isSwiftCartError } from '@swiftcart/sdk';
import { client } from './api.ts';
import { currentSession, onSessionChange } from './session.ts';

/** A cart as the API shows it: lines with products, subtotal, item count and warnings. */
export type Cart = CartDetailsFragment;

/** Where the live cart stands: nobody signed in, waiting for the first cart, following it, or stopped. */
export type CartState =
  | { readonly status: 'signed-out' }
  | { readonly status: 'loading' }
  | { readonly status: 'live'; readonly cart: Cart }
  | { readonly status: 'stopped'; readonly cart: Cart | null; readonly error: unknown; readonly retrying: boolean };

/** Thrown by the cart's changes when nobody is signed in: a cart belongs to a customer. */
export class SignInRequired extends Error {
  constructor() {
    super('Please sign in (top right) to use the cart.');
    this.name = 'SignInRequired';
  }
}

let state: CartState = { status: 'signed-out' };
/** Bumped on every (re)start: answers of an older subscription or session are dropped. */
let generation = 0;
let stopLive: () => void = () => {};
const listeners = new Set<(state: CartState) => void>();

/** The cart as last seen, or null before it arrived (or when signed out). */
export function currentCart(): Cart | null {
  return state.status === 'live' ? state.cart : state.status === 'stopped' ? state.cart : null;
}

/** Where the live cart stands. */
export function cartState(): CartState {
  return state;
}

/** Calls `listener` after every change of the cart or of its live state; returns how to stop. */
export function onCartChange(listener: (state: CartState) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function setState(next: CartState): void {
  state = next;
  for (const listener of listeners) listener(state);
}

/** A cart's version; -1 for none. */
function versionOf(cart: Cart | null): number {
  return cart?.version ?? -1;
}

/**
 * Shows a cart a mutation answered, unless the subscription already showed a later one (two tabs
 * changing at once may answer out of order). The subscription's carts never go backwards, so it
 * has the last word whatever this shows.
 */
function applyAnswer(cart: Cart, started: number): void {
  if (started !== generation) return;
  const shown = currentCart();
  if (shown && versionOf(cart) <= versionOf(shown)) return;
  setState(state.status === 'stopped' ? { ...state, cart } : { status: 'live', cart });
}

/** Errors after which subscribing again with the same token cannot help. */
const FINAL_CODES = new Set(['UNAUTHENTICATED', 'FORBIDDEN']);
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/** Follows the cart until the returned function is called, subscribing again after a transient failure. */
function follow(started: number): () => void {
  let stopped = false;
  let subscription: ReturnType<typeof client.cartUpdated> | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  const run = async () => {
    subscription = client.cartUpdated();
    let ended: unknown = null;
    try {
      for await (const { cartUpdated } of subscription) {
        if (stopped || started !== generation) return;
        failures = 0;
        // The subscription's carts never go backwards, but a mutation's answer may have shown a later one already.
        const shown = currentCart();
        if (shown && versionOf(cartUpdated) < versionOf(shown)) {
          if (state.status !== 'live') setState({ status: 'live', cart: shown });
          continue;
        }
        setState({ status: 'live', cart: cartUpdated });
      }
    } catch (error) {
      ended = error;
    }
    if (stopped || started !== generation) return;
    // Ended by the server (a restart, a new schema) or by an error: say so and, unless the token itself was refused, follow again.
    const retrying = !(isSwiftCartError(ended) && FINAL_CODES.has(ended.code));
    setState({ status: 'stopped', cart: currentCart(), error: ended, retrying });
    if (!retrying) return;
    failures++;
    timer = setTimeout(() => void run(), Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1)));
  };
  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    void subscription?.return();
  };
}

/** (Re)starts following the cart of whoever is signed in now; called at start and after every sign-in and sign-out. */
function restart(): void {
  stopLive();
  const started = ++generation;
  if (!currentSession()) {
    stopLive = () => {};
    setState({ status: 'signed-out' });
    return;
  }
  setState({ status: 'loading' });
  stopLive = follow(started);
}

onSessionChange(restart);
restart();

/** Runs a cart mutation for the signed-in customer and shows the cart it answers. */
async function change(run: () => Promise<Cart>): Promise<Cart> {
  if (!currentSession()) throw new SignInRequired();
  const started = generation;
  const cart = await run();
  applyAnswer(cart, started);
  return cart;
}

/** Adds `quantity` units of `sku` (to its line when it is in the cart already). */
export function addToCart(sku: string, quantity = 1): Promise<Cart> {
  return change(async () => (await client.addToCart({ sku, quantity })).addToCart);
}

/** Sets a line's quantity; 0 removes it. */
export function setQuantity(sku: string, quantity: number): Promise<Cart> {
  return change(async () => (await client.updateCartItem({ sku, quantity })).updateCartItem);
}

/** Removes a line. */
export function removeFromCart(sku: string): Promise<Cart> {
  return change(async () => (await client.removeFromCart({ sku })).removeFromCart);
}

/** How many units are in the cart, for the header; null before the cart arrived or when signed out. */
export function cartCount(): number | null {
  return currentCart()?.itemCount ?? null;
}
