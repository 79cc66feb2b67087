import type DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { CustomerRecord } from './entities.ts';

/** The customer subgraph's request context: the base context plus a per-request customer loader. */
export interface CustomerContext extends RequestContext {
  /** Customers (with their addresses) by id: two SQL queries per tick. No authorisation; resolvers do it. */
  readonly customers: DataLoader<string, CustomerRecord | null>;
}
