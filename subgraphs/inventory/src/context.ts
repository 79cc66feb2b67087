import type DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { StockRecord } from './entities.ts';

/** The inventory subgraph's request context: the base context plus a per-request stock loader. */
export interface InventoryContext extends RequestContext {
  /**
   * Batches every sku asked for in one tick into one SQL query; a sku never stocked loads as all
   * zero. Shared by `Query.stockLevel`, `Product.__resolveReference` and `Product.stock`.
   */
  readonly stock: DataLoader<string, StockRecord>;
}
