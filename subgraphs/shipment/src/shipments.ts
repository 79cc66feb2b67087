import { ErrorCode, apiError, type EntityManager, type Viewer } from '@swiftcart/platform';
import { Shipment, toRecord, type ShipmentRecord } from './entities.ts';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID in its canonical textual form (any case). */
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** Shipments whose `key` (id or order id) is one of `keys` (canonical, lower-case): one SQL query. */
export async function findShipments(em: EntityManager, key: 'id' | 'orderId', keys: readonly string[]): Promise<Map<string, ShipmentRecord>> {
  const unique = [...new Set(keys)];
  if (unique.length === 0) return new Map();
  const rows = await em.fork().find(Shipment, key === 'id' ? { id: { $in: unique } } : { orderId: { $in: unique } });
  return new Map(rows.map((row) => [row[key], toRecord(row)]));
}

/** UNAUTHENTICATED when no token was sent: shipments are never shown to anonymous callers. */
export function requireCustomer(viewer: Viewer): string {
  if (viewer.customerId === null) throw apiError(ErrorCode.Unauthenticated, 'Reading a shipment requires a token');
  return viewer.customerId;
}

/**
 * The ownership rule of a shipment: FORBIDDEN unless the viewer is the shipment's customer or an
 * admin. A shipment is never silently hidden from a foreign viewer, so null always means there is none.
 */
export function visibleShipment(viewer: Viewer, shipment: ShipmentRecord | null): ShipmentRecord | null {
  if (shipment === null) return null;
  if (viewer.customerId !== shipment.customerId && !viewer.roles.includes('admin')) {
    throw apiError(ErrorCode.Forbidden, `Shipment "${shipment.id}" belongs to another customer`, { id: shipment.id });
  }
  return shipment;
}
