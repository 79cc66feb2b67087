/**
 * What the order service consumes (ADR 0008): the product events that feed its price replica, the
 * customer events that feed its copy of saved addresses, and the participants' events that move the saga. Each handler runs inside the inbox transaction of
 * its event (platform/src/inbox.ts): its writes, and the order events it enqueues, commit together
 * with the inbox row or not at all, so a redelivered event changes nothing.
 */
import {
  type AnyEventEnvelope,
  type AnyEventOf,
  type BatchEventHandler,
  type ConsumerSpec,
  type EventHandler,
  type EventSchemaRegistry,
  type TypedEventHandlers,
  catalogueConsumer,
  defineConsumer,
  enqueueEvents,
} from '@swiftcart/platform';
import { PARTICIPANT_EVENT_TYPES, react, type ParticipantEvent } from './saga.ts';
import type { OrderEntity } from './entities.ts';
import type { OrderAnnouncer } from './live.ts';
import { announceChanges, applyDecision, loadSaga, loadSagas, stageDecision } from './store.ts';

/** The consumer (and inbox) names. */
export const CATALOGUE_CONSUMER = 'order.catalogue';
export const SAGA_CONSUMER = 'order.saga';
export const CUSTOMER_CONSUMER = 'order.customers';

/** The participants' event types the saga takes. */
type ParticipantEventType = (typeof PARTICIPANT_EVENT_TYPES)[number];

/**
 * CustomerRegistered / CustomerUpdated: replaces the customer's copy of saved addresses, but only
 * when the event's customer version is newer than the copy's; the version row is written first
 * (one statement), so two events of one customer apply one after the other.
 */
const onCustomerChanged: EventHandler<AnyEventOf<'CustomerRegistered' | 'CustomerUpdated'>> = async (em, event, ctx) => {
  const { customerId, addresses, version } = event.data;
  const applied = await em.execute<{ customer_id: string }[]>(
    `
    insert into customer_replica (customer_id, version, updated_at) values (?, ?, now())
    on conflict (customer_id) do update set version = excluded.version, updated_at = now()
      where customer_replica.version < excluded.version
    returning customer_id`,
    [customerId, version],
  );
  if (applied.length === 0) {
    ctx.log.debug({ customerId, version, eventId: event.id }, 'stale customer event ignored');
    return;
  }
  await em.execute('delete from customer_address where customer_id = ?', [customerId]);
  if (addresses.length === 0) return;
  await em.execute(
    `insert into customer_address (id, customer_id, address)
     select (a->>'id')::uuid, ?, a - 'id' - 'isDefault' from jsonb_array_elements(?::jsonb) as a`,
    [customerId, JSON.stringify(addresses)],
  );
};

/**
 * A participant's event: under the order's row lock, `react`, then the new status, the timeline
 * entry (caused by this event) and the order events it emits (caused by it, correlated by the
 * order id). An event for an order this service does not know is logged and ignored.
 */
function onParticipantEvent(registry: EventSchemaRegistry, announcer: OrderAnnouncer): EventHandler<AnyEventOf<ParticipantEventType>> {
  return async (em, event, ctx) => {
    const orderId = event.data.orderId.toLowerCase();
    const saga = await loadSaga(em, orderId);
    if (saga.order === null) {
      ctx.log.warn({ eventId: event.id, type: event.type, orderId }, 'participant event for an unknown order ignored');
      return;
    }
    const result = react(saga.state, event);
    await applyDecision(em, saga.order, result, { causationId: event.id, now: new Date(), registry, announcer, afterCommit: ctx.afterCommit });
    if (result.transition === null) {
      ctx.log.info({ eventId: event.id, type: event.type, orderId, status: saga.order.status }, 'participant event changes nothing');
    }
  };
}

/**
 * Participants' events of one partition batch, set-based: every order they name is loaded and
 * locked in one query (in id order, so two batches never wait on each other in a cycle), their
 * lines in another; each event then goes through `react` in memory, in offset order; the changes
 * are flushed once per round (a round holds at most one event per order, so every timeline entry
 * still raises its order's version), and all emitted events go to the outbox in one statement.
 * The same rows result as from {@link onParticipantEvent} one event at a time.
 */
function onParticipantEvents(registry: EventSchemaRegistry, announcer: OrderAnnouncer): BatchEventHandler {
  return async (em, envelopes, ctx) => {
    const events = envelopes as unknown as readonly ParticipantEvent[];
    const orderIdOf = (event: ParticipantEvent) => event.data.orderId.toLowerCase();
    const sagas = await loadSagas(em, [...new Set(events.map(orderIdOf))]);
    const outbox: AnyEventEnvelope[] = [];
    const changed = new Set<OrderEntity>();
    let pending = events;
    while (pending.length > 0) {
      const round = new Set<string>();
      const later: ParticipantEvent[] = [];
      for (const event of pending) {
        const orderId = orderIdOf(event);
        // An order's later events wait for the next round, behind its earlier one.
        if (round.has(orderId)) {
          later.push(event);
          continue;
        }
        round.add(orderId);
        const saga = sagas.get(orderId);
        if (!saga) {
          ctx.log.warn({ eventId: event.id, type: event.type, orderId }, 'participant event for an unknown order ignored');
          continue;
        }
        const result = react(saga.state, event);
        outbox.push(...stageDecision(em, saga.order, result, { causationId: event.id, now: new Date() }));
        saga.state = result.state;
        if (result.transition !== null) changed.add(saga.order);
        else ctx.log.info({ eventId: event.id, type: event.type, orderId, status: saga.order.status }, 'participant event changes nothing');
      }
      await em.flush();
      pending = later;
    }
    await enqueueEvents(em, outbox, { registry });
    await announceChanges(em, [...changed], { announcer, afterCommit: ctx.afterCommit });
  };
}

/** The order service's consumers: the price replica and the saga (announcing order changes through `announcer`). */
export function orderConsumers(deps: { readonly registry: EventSchemaRegistry; readonly announcer: OrderAnnouncer }): readonly ConsumerSpec[] {
  const participant = onParticipantEvent(deps.registry, deps.announcer);
  return [
    catalogueConsumer(CATALOGUE_CONSUMER),
    defineConsumer({
      consumer: CUSTOMER_CONSUMER,
      handlers: { CustomerRegistered: onCustomerChanged, CustomerUpdated: onCustomerChanged },
    }),
    defineConsumer({
      consumer: SAGA_CONSUMER,
      handlers: Object.fromEntries(PARTICIPANT_EVENT_TYPES.map((type) => [type, participant])) as TypedEventHandlers<ParticipantEventType>,
      applyBatch: onParticipantEvents(deps.registry, deps.announcer),
    }),
  ];
}
