/**
 * Every failure the storefront can meet, said in words. Views call {@link describeError} instead
 * of printing `error.message`, so a customer never sees a stack trace or an internal code.
 */
import { isSwiftCartError } from '@swiftcart/sdk';

/** A sentence for the customer about what went wrong and, where possible, what to do. */
export function describeError(error: unknown): string {
  if (!isSwiftCartError(error)) {
    // Not from the SDK: a bug in the page. Keep the details for developers in the console.
    console.error(error);
    return 'Something went wrong on this page. Please reload and try again.';
  }
  switch (error.code) {
    case 'INSUFFICIENT_STOCK':
      return 'Sorry, there is not enough stock for your cart. Lower the quantity or remove the item.';
    case 'PRODUCT_UNAVAILABLE':
      return 'Sorry, a product in your cart is no longer sold. Remove it and try again.';
    case 'FORBIDDEN':
      return 'You are not allowed to do that.';
    case 'UNAUTHENTICATED':
      return 'Please sign in (your session may have expired).';
    case 'NOT_FOUND':
      return 'We could not find that.';
    case 'BAD_USER_INPUT': {
      // A saved address reaches the order service through events: right after it was saved, checkout may not know it yet.
      if (error.extensions?.field === 'input.shippingAddressId')
        return 'The shop does not know this saved address yet (a new address takes a few seconds to reach checkout). Please try again in a moment.';
      const field = typeof error.extensions?.field === 'string' ? ` (${error.extensions.field})` : '';
      return `Please check your details${field}: ${error.message}`;
    }
    case 'CART_LIMIT_EXCEEDED': {
      const limit = typeof error.extensions?.limit === 'number' ? error.extensions.limit : null;
      if (error.extensions?.field === 'quantity')
        return limit === null ? 'That is more of one product than a cart may hold.' : `A cart holds at most ${limit} of one product.`;
      return limit === null ? 'Your cart is full: remove something first.' : `A cart holds at most ${limit} different products: remove one first.`;
    }
    case 'CART_EMPTY':
      return 'Your cart is empty: add something before checking out.';
    case 'CONFLICT':
      return `That cannot be done: ${error.message}`;
    case 'IDEMPOTENCY_KEY_REUSED':
      return 'This checkout was already submitted with a different cart. Please try again.';
    case 'ORDER_NOT_CANCELLABLE':
      return 'This order can no longer be cancelled.';
    case 'OVERLOADED':
    case 'RATE_LIMITED':
      return 'The shop is very busy right now, and nothing was done. Please try again in a minute.';
    case 'NETWORK_ERROR':
    case 'HTTP_ERROR':
    case 'BAD_RESPONSE':
    case 'CONNECTION_CLOSED':
    case 'SUBSCRIPTION_UPSTREAM_FAILED':
    case 'SHUTTING_DOWN':
    case 'SERVICE_UNAVAILABLE':
      return 'The shop cannot be reached right now. Check your connection and try again in a moment.';
    default:
      console.error(error);
      return 'Something went wrong on our side. Please try again.';
  }
}

/**
 * Why an order ended where it did, from its timeline's `reason` (e.g. "payment declined: ...",
 * "insufficient stock: SKU-0001"), for the order page's banner.
 */
export function describeOutcome(status: string, reason: string | null | undefined): string | null {
  const why = reason ?? '';
  if (status === 'CANCELLED' && /declin/i.test(why))
    return 'Your payment was declined, so the order was cancelled. You were not charged and the items are back in stock.';
  if (status === 'CANCELLED' && /payment/i.test(why)) return 'The payment could not be completed, so the order was cancelled. You were not charged.';
  if (status === 'CANCELLED') return `This order was cancelled${why ? ` (${why})` : ''}.`;
  if (status === 'REJECTED' && /stock/i.test(why)) return 'Sorry, an item ran out of stock before we could reserve it, so the order was not placed.';
  if (status === 'REJECTED') return `The order could not be accepted${why ? ` (${why})` : ''}.`;
  return null;
}
