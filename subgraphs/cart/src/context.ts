import type { RequestContext } from '@swiftcart/platform';

/** The cart subgraph's request context: the base context; the cart's connections live on the service. */
export type CartContext = RequestContext;
