/**
 * The saga's persistence: the one place where order rows become an {@link OrderSagaState} and a
 * saga decision becomes rows (status, timeline entry) and outbox events. Every caller (the
 * mutations, the participant-event consumer, the deadline sweeper) runs inside a transaction and
 * goes through {@link loadSaga} (a row lock) and {@link applyDecision}, so one order's steps are
 * serialised and each step commits together with the events it announces. {@link applyDecision}
 * is also the one place that announces a change to live subscribers, after the commit.
 */
import { LockMode } from '@mikro-orm/core';
import {
  type AfterCommit,
  type AnyEventEnvelope,
  type EntityManager,
  type EventSchemaRegistry,
  enqueueEvents,
  enqueueLive,
  newEvent,
} from '@swiftcart/platform';
import { Order, OrderItem, OrderTransition, type OrderEntity, type OrderItemEntity, type OrderStatus, type ShippingAddressRecord } from './entities.ts';
import { initialOrderSagaState, type OrderSagaState, type PlacedOrderSagaState, type SagaDecision } from './saga.ts';
import { ORDER_CHANGED, type OrderAnnouncer, type OrderChange } from './live.ts';

/** Statuses that can only be reached after payment authorised the amount. */
const PAID_STATUSES: readonly OrderStatus[] = ['CONFIRMED', 'SHIPPED', 'DELIVERED'];

/**
 * The saga state of a stored order (the initial state when there is none). `items` must be the
 * order's lines. `paymentAuthorized` and `paymentId` are not stored: `decide` never reads them
 * (payment refunds what it authorised by itself on OrderCancelled), so they are derived from the
 * status only, which is exact for every status except CANCELLED after payment.
 */
export function sagaState(order: OrderEntity | null, items: readonly OrderItemEntity[]): OrderSagaState {
  if (order === null) return initialOrderSagaState;
  return {
    status: order.status,
    orderId: order.id,
    customerId: order.customerId,
    items: items.map((item) => ({ sku: item.sku, quantity: item.quantity, unitPrice: { amount: item.unitPriceAmount, currency: order.currency } })),
    total: { amount: order.totalAmount, currency: order.currency },
    paymentMethod: order.paymentMethod,
    deadlineAt: order.deadlineAt.toISOString(),
    paymentAuthorized: PAID_STATUSES.includes(order.status),
  };
}

/** An order's rows, locked, with its saga state. */
export interface LoadedSaga {
  /** Null when there is no such order (or, with `skipLocked`, when another transaction holds it). */
  readonly order: OrderEntity | null;
  readonly items: readonly OrderItemEntity[];
  readonly state: OrderSagaState;
}

/**
 * Loads an order `for update` (its lines are immutable and need no lock) inside the caller's
 * transaction. With `skipLocked` an order another transaction holds comes back as absent instead of
 * being waited for (`for update skip locked`, for the sweeper).
 */
export async function loadSaga(em: EntityManager, orderId: string, options: { readonly skipLocked?: boolean } = {}): Promise<LoadedSaga> {
  const lockMode = options.skipLocked ? LockMode.PESSIMISTIC_PARTIAL_WRITE : LockMode.PESSIMISTIC_WRITE;
  const order = await em.findOne(Order, { id: orderId }, { lockMode });
  const items = order === null ? [] : await em.find(OrderItem, { order: order.id }, { orderBy: { sku: 'asc' } });
  return { order, items, state: sagaState(order, items) };
}

/** An order's rows and its saga state, as {@link loadSagas} gives them; the caller moves `state` on. */
export interface LockedSaga {
  readonly order: OrderEntity;
  state: OrderSagaState;
}

/**
 * Loads and locks (`for update`) the orders `orderIds` that exist, in id order (so that two callers
 * locking overlapping sets never wait on each other in a cycle), and their lines, in two queries.
 */
export async function loadSagas(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, LockedSaga>> {
  const sagas = new Map<string, LockedSaga>();
  if (orderIds.length === 0) return sagas;
  const orders = await em.find(Order, { id: { $in: [...orderIds] } }, { lockMode: LockMode.PESSIMISTIC_WRITE, orderBy: { id: 'asc' } });
  if (orders.length === 0) return sagas;
  const items = await em.find(OrderItem, { order: { $in: orders.map((o) => o.id) } }, { orderBy: { order: 'asc', sku: 'asc' } });
  const itemsOf = new Map<string, OrderItemEntity[]>();
  for (const item of items) {
    const list = itemsOf.get(item.order);
    if (list) list.push(item);
    else itemsOf.set(item.order, [item]);
  }
  for (const order of orders) sagas.set(order.id, { order, state: sagaState(order, itemsOf.get(order.id) ?? []) });
  return sagas;
}

/** What a placement stores beyond the saga state. */
export interface PlacementDetails {
  readonly idempotencyKey: string;
  readonly requestHash: string;
  readonly shippingAddress: ShippingAddressRecord;
}

/** Creates (does not flush) the rows of a just-placed order from the state `react(PlaceOrder)` returned. */
export function createPlacedOrder(em: EntityManager, state: PlacedOrderSagaState, details: PlacementDetails, now: Date): OrderEntity {
  const order = em.create(Order, {
    id: state.orderId,
    customerId: state.customerId,
    status: state.status,
    currency: state.total.currency,
    totalAmount: state.total.amount,
    idempotencyKey: details.idempotencyKey,
    requestHash: details.requestHash,
    deadlineAt: new Date(state.deadlineAt),
    shippingAddress: details.shippingAddress,
    paymentMethod: state.paymentMethod,
    createdAt: now,
    updatedAt: now,
  });
  for (const item of state.items) {
    em.create(OrderItem, { order: state.orderId, sku: item.sku, quantity: item.quantity, unitPriceAmount: item.unitPrice.amount });
  }
  return order;
}

/** Who or what caused a decision, when it is recorded, and how its change is announced. */
export interface DecisionMeta {
  /** The id of the participant event that caused it; null for a command (a mutation, the deadline). */
  readonly causationId: string | null;
  readonly now: Date;
  readonly registry: EventSchemaRegistry;
  /** Publishes the change to live subscribers. */
  readonly announcer: OrderAnnouncer;
  /** Defers the announcement past the commit: the inbox's `afterCommit`, or the platform's `inTransaction`'s. */
  readonly afterCommit: AfterCommit;
}

/**
 * Persists what `react` decided for `order` in the caller's transaction: the new status, the
 * timeline entry (with the causing event and the reason) and the emitted events in the outbox,
 * in order. A decision without transition or events writes nothing. Every timeline entry raises the
 * order's version, and after the commit the new version is announced on the order's channel.
 */
export async function applyDecision(
  em: EntityManager,
  order: OrderEntity,
  result: SagaDecision & { readonly state: OrderSagaState },
  meta: DecisionMeta,
): Promise<void> {
  const { emit, transition } = result;
  if (transition === null && emit.length === 0) return;
  const events = stageDecision(em, order, result, meta);
  await em.flush();
  await enqueueEvents(em, events, { registry: meta.registry });
  if (transition !== null) await announceChanges(em, [order], meta);
}

/**
 * The in-memory half of {@link applyDecision}, for callers that apply many decisions at once: sets
 * the status and creates the timeline entry (unflushed), and returns the emitted events as
 * envelopes for the outbox. The caller flushes (at most one decision per order between flushes,
 * so that each timeline entry raises the version), enqueues the events, and announces.
 */
export function stageDecision(
  em: EntityManager,
  order: OrderEntity,
  result: SagaDecision & { readonly state: OrderSagaState },
  meta: Pick<DecisionMeta, 'causationId' | 'now'>,
): AnyEventEnvelope[] {
  const { transition, emit, state } = result;
  if (transition === null && emit.length === 0) return [];
  const statusChanged = state.status !== null && state.status !== order.status;
  if (statusChanged) order.status = state.status!;
  if (transition !== null) {
    // A timeline-only entry (a refund, "shipment created") changes no column of a stored order, and
    // the optimistic lock only counts rows that changed: touching updated_at makes it one, so
    // `version` grows with the timeline too and subscribers can tell the new order from the old.
    const stored = em.getUnitOfWork().getOriginalEntityData(order) !== undefined;
    if (stored && !statusChanged) order.updatedAt = later(meta.now, order.updatedAt);
    em.create(OrderTransition, {
      order: order.id,
      status: transition.status,
      at: meta.now,
      eventType: transition.causedBy?.eventType ?? null,
      eventId: transition.causedBy?.eventId ?? null,
      reason: transition.reason ?? null,
    });
  }
  const occurredAt = meta.now.toISOString();
  return emit.map((event) => newEvent(event.type, event.data, { occurredAt, causationId: meta.causationId }));
}

/**
 * Announces the orders' status and version as flushed now: recorded as live changes in the caller's
 * transaction (the outbox relay announces them whatever happens to this process, ADR 0016), and
 * announced by this process too once the transaction has committed, the fast path.
 */
export async function announceChanges(em: EntityManager, orders: readonly OrderEntity[], meta: Pick<DecisionMeta, 'announcer' | 'afterCommit'>): Promise<void> {
  if (orders.length === 0) return;
  const changes: OrderChange[] = orders.map((order) => ({ id: order.id, status: order.status, version: order.version }));
  await enqueueLive(
    em,
    changes.map((change) => ({ type: ORDER_CHANGED, aggregateType: 'Order', aggregateId: change.id, payload: change })),
  );
  meta.afterCommit(async () => {
    for (const change of changes) await meta.announcer.announce(change);
  });
}

/** `candidate`, or just after `current` when the candidate is not later (a pinned or skewed clock). */
function later(candidate: Date, current: Date | undefined): Date {
  if (!current || candidate.getTime() > current.getTime()) return candidate;
  return new Date(current.getTime() + 1);
}
