/**
 * The README's full example: browse, search, follow stock live, sign in, place an order, follow it
 * live to the end of its saga, and handle errors by code. The SDK's tests run it against a real stack.
 */
import { ErrorCode, type SwiftCartClient, createClient, isSwiftCartError } from '@swiftcart/sdk';

/** What the example needs: the gateway, a customer's token (sign-in), and a sku to buy. */
export interface StorefrontOptions {
  readonly url: string;
  readonly token: string;
  readonly sku: string;
  readonly log?: (...values: unknown[]) => void;
}

/** Runs the storefront flow; resolves to the placed order's id and its final status. */
export async function storefront({ url, token, sku, log = console.log }: StorefrontOptions) {
  // The token is read before every request and every new subscription: sign in and out freely.
  let session: string | null = null;
  const client: SwiftCartClient = createClient({ url, token: () => session });
  try {
    // Browse the catalogue a page at a time (anonymous), then search it.
    const { products } = await client.browseProducts({ first: 5 });
    for (const { node } of products.edges) log(node.sku, node.name, node.price.amount, node.stock.available);
    if (products.pageInfo.hasNextPage) await client.browseProducts({ first: 5, after: products.pageInfo.endCursor });
    const { products: found } = await client.searchProducts({ filter: { search: sku, status: 'ACTIVE' } });
    log(`${found.totalCount} match ${sku}`);

    // One product page, and its stock followed live: the current level first, then every change.
    const { product } = await client.product({ sku });
    if (!product) throw new Error(`${sku} does not exist`);
    const stock = client.stockLevelChanged({ skus: [sku] });
    const following = (async () => {
      for await (const { stockLevelChanged: level } of stock) log(`${level.sku}: ${level.available} available (v${level.version})`);
    })();

    // Sign in, then place an order. Prices come from the catalogue; the idempotency key makes a retry safe.
    session = token;
    const { placeOrder: order } = await client.placeOrder({
      input: {
        idempotencyKey: crypto.randomUUID(),
        items: [{ sku, quantity: 1 }],
        shippingAddress: { name: 'Ada Lovelace', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' },
        paymentMethod: 'tok_visa',
      },
    });
    log(`order ${order.id}: ${order.status}, ${order.total.amount} ${order.total.currency}`);

    // Follow the order live until its saga settles; leaving the loop ends the subscription.
    let status = order.status;
    for await (const { orderUpdated } of client.orderUpdated({ id: order.id })) {
      status = orderUpdated.status;
      log(`order ${orderUpdated.id}: ${status} (v${orderUpdated.version}), payment ${orderUpdated.payment?.status ?? '-'}`);
      if (status === 'CONFIRMED' || status === 'REJECTED' || status === 'CANCELLED') break;
    }
    await stock.return();
    await following;

    // Errors carry the API's extensions.code, typed.
    try {
      await client.placeOrder({
        input: {
          idempotencyKey: crypto.randomUUID(),
          items: [{ sku: 'NO-SUCH-SKU', quantity: 1 }],
          shippingAddress: { name: 'A', line1: 'B', city: 'C', postalCode: '1', country: 'DE' },
          paymentMethod: 'tok_visa',
        },
      });
    } catch (error) {
      if (!isSwiftCartError(error)) throw error;
      switch (error.code) {
        case ErrorCode.BadUserInput:
          log(`fix ${error.extensions.field}: ${error.message}`);
          break;
        case ErrorCode.Unauthenticated:
          session = null;
          log('sign in again');
          break;
        case ErrorCode.ProductUnavailable:
          log('no longer sold');
          break;
        case 'NETWORK_ERROR':
          log('offline, try again later');
          break;
        default:
          throw error;
      }
    }
    return { id: order.id, status };
  } finally {
    await client.close();
  }
}
