import DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { ProductRecord } from './entities.ts';

/** The product subgraph's request context: the base context plus a per-request product loader. */
export interface ProductContext extends RequestContext {
  /** Batches every sku asked for in one tick into one cache round trip and one SQL query. */
  readonly products: DataLoader<string, ProductRecord | null>;
}
