import { LockMode } from '@mikro-orm/core';
import {
  ErrorCode,
  apiError,
  badInput,
  canRead,
  enqueueEvents,
  isUuid,
  newEvent,
  type AnyEventEnvelope,
  type EntityManager,
  type Viewer,
} from '@swiftcart/platform';
import { Shipment, toRecord, type ShipmentEntity, type ShipmentRecord, type ShipmentStatus } from './entities.ts';

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

/** The longest carrier name and tracking number (the `shipment` table's checks). */
export const MAX_CARRIER_LENGTH = 100;
export const MAX_TRACKING_NUMBER_LENGTH = 100;

/** The canonical (lower-case) order id; BAD_USER_INPUT unless it is a UUID. */
export function checkOrderId(orderId: string): string {
  if (!isUuid(orderId)) throw badInput(`"orderId" must be a UUID, got "${orderId.slice(0, 100)}"`, 'orderId');
  return orderId.toLowerCase();
}

/** Validates a dispatch; returns the carrier and tracking number trimmed, or throws BAD_USER_INPUT. */
export function checkDispatch(carrier: string, trackingNumber: string): { carrier: string; trackingNumber: string } {
  const trimmed = { carrier: carrier.trim(), trackingNumber: trackingNumber.trim() };
  if (trimmed.carrier.length === 0 || trimmed.carrier.length > MAX_CARRIER_LENGTH) {
    throw badInput(`"carrier" must be 1 to ${MAX_CARRIER_LENGTH} characters`, 'carrier');
  }
  if (trimmed.trackingNumber.length === 0 || trimmed.trackingNumber.length > MAX_TRACKING_NUMBER_LENGTH) {
    throw badInput(`"trackingNumber" must be 1 to ${MAX_TRACKING_NUMBER_LENGTH} characters`, 'trackingNumber');
  }
  return trimmed;
}

/**
 * Moves the order's shipment from `from` on, in one transaction under a row lock, and enqueues the
 * event that announces it in the same transaction. NOT_FOUND when the order has no shipment,
 * INVALID_TRANSITION (with the current `status`) when it is not `from`.
 */
async function transition(
  em: EntityManager,
  orderId: string,
  from: ShipmentStatus,
  to: ShipmentStatus,
  apply: (row: ShipmentEntity) => void,
  announce: (row: ShipmentEntity) => AnyEventEnvelope,
): Promise<ShipmentRecord> {
  return em.transactional(async (tx) => {
    const row = await tx.findOne(Shipment, { orderId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!row) throw apiError(ErrorCode.NotFound, `Order "${orderId}" has no shipment`, { id: orderId, orderId });
    if (row.status !== from) {
      throw apiError(ErrorCode.InvalidTransition, `The shipment of order "${orderId}" is ${row.status}: only a ${from} shipment can become ${to}`, {
        orderId,
        status: row.status,
        from,
        to,
      });
    }
    row.status = to;
    apply(row);
    await tx.flush();
    await enqueueEvents(tx, [announce(row)]);
    return toRecord(row);
  });
}

/** PENDING → DISPATCHED with the carrier and tracking number; publishes ShipmentDispatched. */
export function dispatchShipment(em: EntityManager, orderId: string, carrier: string, trackingNumber: string): Promise<ShipmentRecord> {
  const id = checkOrderId(orderId);
  const details = checkDispatch(carrier, trackingNumber);
  return transition(
    em,
    id,
    'PENDING',
    'DISPATCHED',
    (row) => {
      row.carrier = details.carrier;
      row.trackingNumber = details.trackingNumber;
      row.dispatchedAt = new Date();
    },
    (row) => newEvent('ShipmentDispatched', { orderId: row.orderId, shipmentId: row.id, ...details }),
  );
}

/** DISPATCHED → DELIVERED; publishes ShipmentDelivered. */
export function markShipmentDelivered(em: EntityManager, orderId: string): Promise<ShipmentRecord> {
  const id = checkOrderId(orderId);
  return transition(
    em,
    id,
    'DISPATCHED',
    'DELIVERED',
    (row) => {
      row.deliveredAt = new Date();
    },
    (row) => newEvent('ShipmentDelivered', { orderId: row.orderId, shipmentId: row.id }),
  );
}
