import type DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { PaymentRecord } from './entities.ts';

/** The payment subgraph's request context: the base context plus a per-request payment loader. */
export interface PaymentContext extends RequestContext {
  /**
   * Payments by canonical order id: every order asked for in one tick costs one SQL query in all.
   * It applies no authorisation; resolvers do.
   */
  readonly paymentsByOrder: DataLoader<string, PaymentRecord | null>;
}
