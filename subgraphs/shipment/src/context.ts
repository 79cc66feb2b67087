import type DataLoader from 'dataloader';
import type { RequestContext } from '@swiftcart/platform';
import type { ShipmentRecord } from './entities.ts';

/** The shipment subgraph's request context: the base context plus per-request shipment loaders. */
export interface ShipmentContext extends RequestContext {
  /** Shipments by canonical id: one SQL query per tick. No authorisation; resolvers do it. */
  readonly shipments: DataLoader<string, ShipmentRecord | null>;
  /** Shipments by canonical order id: one SQL query per tick. No authorisation; resolvers do it. */
  readonly shipmentsByOrder: DataLoader<string, ShipmentRecord | null>;
}
