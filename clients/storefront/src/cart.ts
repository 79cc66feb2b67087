/** The cart, kept in localStorage so it survives reloads and is shared by the shop's tabs. */

/** One line of the cart; price and name are copied for display, the order service prices the order itself. */
export interface CartLine {
  readonly sku: string;
  readonly name: string;
  readonly price: number;
  readonly currency: string;
  quantity: number;
}

const KEY = 'swiftcart.cart';
const listeners = new Set<() => void>();

/** The cart's lines, in the order they were added. */
export function cartLines(): CartLine[] {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? '[]') as CartLine[];
  } catch {
    return [];
  }
}

/** Calls `listener` after every change of the cart (also from another tab); returns how to stop. */
export function onCartChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function save(lines: CartLine[]): void {
  localStorage.setItem(KEY, JSON.stringify(lines.filter((line) => line.quantity > 0)));
  for (const listener of listeners) listener();
}

window.addEventListener('storage', (event) => {
  if (event.key === KEY) for (const listener of listeners) listener();
});

/** Adds one unit of a product (a new line, or one more of an existing line). */
export function addToCart(product: Omit<CartLine, 'quantity'>): void {
  const lines = cartLines();
  const line = lines.find((l) => l.sku === product.sku);
  if (line) line.quantity += 1;
  else lines.push({ ...product, quantity: 1 });
  save(lines);
}

/** Sets a line's quantity; 0 removes it. */
export function setQuantity(sku: string, quantity: number): void {
  save(cartLines().map((line) => (line.sku === sku ? { ...line, quantity: Math.max(0, Math.floor(quantity)) } : line)));
}

/** Empties the cart (after a successful checkout). */
export function clearCart(): void {
  save([]);
}

/** How many units are in the cart, for the header. */
export function cartCount(): number {
  return cartLines().reduce((sum, line) => sum + line.quantity, 0);
}
