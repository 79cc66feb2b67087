import type DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { OrderRecord } from './entities.ts';

/** The order subgraph's request context: the base context plus a per-request order loader. */
export interface OrderContext extends RequestContext {
  /**
   * Orders by canonical id, with lines and timeline. Every id asked for in one tick costs three SQL
   * queries in all (orders, lines, transitions); it applies no authorisation, callers do.
   */
  readonly orders: DataLoader<string, OrderRecord | null>;
}
