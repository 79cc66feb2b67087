import { ErrorCode, apiError, canRead, type EntityManager, type Viewer } from '@swiftcart/platform';
import { Shipment, toRecord, type ShipmentRecord } from './entities.ts';

/** Shipments whose `key` (id or order id) is one of `keys` (canonical, lower-case): one SQL query. */
export async function findShipments(em: EntityManager, key: 'id' | 'orderId', keys: readonly string[]): Promise<Map<string, ShipmentRecord>> {
  const unique = [...new Set(keys)];
  if (unique.length === 0) return new Map();
  const rows = await em.fork().find(Shipment, key === 'id' ? { id: { $in: unique } } : { orderId: { $in: unique } });
  return new Map(rows.map((row) => [row[key], toRecord(row)]));
}

/**
 * The ownership rule of a shipment: FORBIDDEN unless the viewer is the shipment's customer or an
 * admin. A shipment is never silently hidden from a foreign viewer, so null always means there is none.
 */
export function visibleShipment(viewer: Viewer, shipment: ShipmentRecord | null): ShipmentRecord | null {
  if (shipment === null) return null;
  if (!canRead(viewer, shipment.customerId)) {
    throw apiError(ErrorCode.Forbidden, `Shipment "${shipment.id}" belongs to another customer`, { id: shipment.id });
  }
  return shipment;
}
