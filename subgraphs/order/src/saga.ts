/**
 * The order saga (docs/adr/0008-orchestrated-saga.md): the order service orchestrates, so this is
 * the one place where an order's steps are decided. It is a pure pair, in the style of emmett's
 * deciders:
 *
 * - `decide(input, state)` answers a command (PlaceOrder, CancelOrder, ExpireOrder) or a participant's
 *   event with a {@link SagaDecision}: the timeline entry it causes (`transition`, null for none) and
 *   the events to publish on `order.events.v1` (`emit`). A command that must be refused throws a
 *   {@link SagaRejection} whose `code` is the GraphQL `extensions.code`.
 * - `evolve(state, fact)` folds what the saga accepted (the inputs `decide` did not reject, and the
 *   transitions it decided) into the state. The emitted events add nothing to the inputs and
 *   transitions (OrderPlaced carries no payment method, PlaceOrder does), so evolve does not take them.
 *
 * No I/O, no clock, no randomness: `now` comes in with the commands, event ids and timestamps are
 * given by the caller when it wraps an emitted event in its envelope (the platform's `newEvent`).
 * The events' data types are generated from their contracts (schema/events/).
 * All data is readonly; nothing that is passed in is mutated.
 */
import { SKU_PATTERN, isUuid } from '@swiftcart/platform/ids';
import { MAX_REASON_LENGTH, clipReason } from '@swiftcart/platform/reasons';
import type { EventDataMap, EventType, Money, OrderPlacedItem, SkuQuantity } from '@swiftcart/platform/events';
import type { OrderStatus } from './entities.ts';

// ---------------------------------------------------------------------------------------------
// Data

export type { Money, SkuQuantity };

/** One order line, priced from the catalogue replica when the order is placed (OrderPlaced's). */
export type OrderLine = OrderPlacedItem;

/** Who issues a cancellation: the caller's token `sub` and roles. */
export interface Actor {
  readonly customerId: string;
  readonly roles: readonly string[];
}

/** A command: what the order service itself asks of the saga. */
export interface Command<Type extends string, Data> {
  readonly type: Type;
  readonly data: Data;
}

/**
 * A participant's event as the consumer hands it over: its envelope `id`, `type` and `data`. A whole
 * parsed envelope fits, the other envelope fields are not needed.
 */
export interface InputEvent<Type extends string, Data> {
  readonly type: Type;
  readonly id: string;
  readonly data: Data;
}

/** An event the saga emits: type and data. The platform's `newEvent` wraps it for the outbox. */
export interface OutputEvent<Type extends string, Data> {
  readonly type: Type;
  readonly data: Data;
}

/** A participant's event of one contract, as the saga takes it. */
type Participant<T extends EventType> = InputEvent<T, EventDataMap[T]>;
/** An order event of one contract, as the saga emits it. */
type Emitted<T extends EventType> = OutputEvent<T, EventDataMap[T]>;

// Commands ---------------------------------------------------------------------------------------

/**
 * Place an order. `items` are priced by the caller from the catalogue replica; 1 to 100 lines, each
 * sku at most once (a duplicate sku is BAD_USER_INPUT, lines are not merged), quantity 1 to 1,000,
 * all prices in one currency. `deadlineAt` and `now` are ISO-8601 instants; the deadline must be
 * after now.
 */
export type PlaceOrder = Command<
  'PlaceOrder',
  {
    readonly orderId: string;
    readonly customerId: string;
    readonly items: readonly OrderLine[];
    readonly paymentMethod: string;
    readonly deadlineAt: string;
    readonly now: string;
  }
>;

/**
 * Cancel an order: its customer or an admin only, before it has shipped. `reason` is at most 500
 * characters; without one (null, empty or blank) a default reason names who cancelled.
 */
export type CancelOrder = Command<
  'CancelOrder',
  {
    readonly orderId: string;
    readonly by: Actor;
    readonly reason?: string | null;
    readonly now: string;
  }
>;

/** The saga's deadline timer fired: cancels an order still PENDING or AWAITING_PAYMENT at `now >= deadlineAt`. */
export type ExpireOrder = Command<
  'ExpireOrder',
  {
    readonly orderId: string;
    readonly now: string;
  }
>;

/** Every command the saga decides on. */
export type OrderSagaCommand = PlaceOrder | CancelOrder | ExpireOrder;

// Participant events (inputs) --------------------------------------------------------------------

export type StockReserved = Participant<'StockReserved'>;
export type StockReservationFailed = Participant<'StockReservationFailed'>;
export type StockReleased = Participant<'StockReleased'>;
export type StockCommitted = Participant<'StockCommitted'>;
export type PaymentAuthorized = Participant<'PaymentAuthorized'>;
export type PaymentDeclined = Participant<'PaymentDeclined'>;
export type PaymentFailed = Participant<'PaymentFailed'>;
export type PaymentRefunded = Participant<'PaymentRefunded'>;
export type ShipmentCreated = Participant<'ShipmentCreated'>;
export type ShipmentDispatched = Participant<'ShipmentDispatched'>;
export type ShipmentDelivered = Participant<'ShipmentDelivered'>;
export type ShipmentCancelled = Participant<'ShipmentCancelled'>;

/** The participants' events that move the saga on. */
export type SagaStepEvent =
  | StockReserved
  | StockReservationFailed
  | PaymentAuthorized
  | PaymentDeclined
  | PaymentFailed
  | ShipmentDispatched
  | ShipmentDelivered;

/** The participants' events that only go on the timeline: they never change the status. */
export type TimelineEvent = StockReleased | StockCommitted | PaymentRefunded | ShipmentCreated | ShipmentCancelled;

/** Every participant event the orchestrator consumes. */
export type ParticipantEvent = SagaStepEvent | TimelineEvent;

/** Everything `decide` takes. */
export type OrderSagaInput = OrderSagaCommand | ParticipantEvent;

/** The types of {@link ParticipantEvent}, for a consumer to tell them from other types on its topics. */
export const PARTICIPANT_EVENT_TYPES = [
  'StockReserved',
  'StockReservationFailed',
  'StockReleased',
  'StockCommitted',
  'PaymentAuthorized',
  'PaymentDeclined',
  'PaymentFailed',
  'PaymentRefunded',
  'ShipmentCreated',
  'ShipmentDispatched',
  'ShipmentDelivered',
  'ShipmentCancelled',
] as const satisfies readonly ParticipantEvent['type'][];

/** Whether an incoming envelope is one of the participant events the saga takes. */
export function isParticipantEvent(event: { readonly type: string }): event is ParticipantEvent {
  return (PARTICIPANT_EVENT_TYPES as readonly string[]).includes(event.type);
}

// Order events (outputs, order.events.v1) ------------------------------------------------------

export type OrderPlaced = Emitted<'OrderPlaced'>;
export type PaymentRequested = Emitted<'PaymentRequested'>;
export type OrderConfirmed = Emitted<'OrderConfirmed'>;
export type OrderCancelled = Emitted<'OrderCancelled'>;
export type OrderRejected = Emitted<'OrderRejected'>;

/** The events the saga publishes on `order.events.v1`. */
export type OrderSagaEvent = OrderPlaced | PaymentRequested | OrderConfirmed | OrderCancelled | OrderRejected;

// Decisions --------------------------------------------------------------------------------------

/** The event that caused a transition; absent when a command did. */
export interface CausedBy {
  readonly eventType: string;
  readonly eventId: string;
}

/**
 * One timeline entry (an `order_transition` row): `status` is the order's status after the input.
 * It differs from the status before for a saga step; it is the same for a timeline-only event
 * (StockReleased, StockCommitted, PaymentRefunded, ShipmentCreated, ShipmentCancelled).
 */
export interface SagaTransition {
  readonly status: OrderStatus;
  readonly reason?: string;
  readonly causedBy?: CausedBy;
}

/** What `decide` answers: the timeline entry (null for none) and the order events to publish, in order. */
export interface SagaDecision {
  readonly transition: SagaTransition | null;
  readonly emit: readonly OrderSagaEvent[];
}

/** The codes of {@link SagaRejection}: each is an `ErrorCode` of `@swiftcart/platform`. */
export type SagaRejectionCode = 'BAD_USER_INPUT' | 'FORBIDDEN' | 'NOT_FOUND' | 'CONFLICT' | 'ORDER_NOT_CANCELLABLE';

/**
 * A command the saga refuses. Resolvers map it one to one:
 * `apiError(rejection.code, rejection.message, rejection.extensions)`.
 */
export class SagaRejection extends Error {
  override readonly name = 'SagaRejection';
  readonly code: SagaRejectionCode;
  /** Extra `extensions` for the GraphQL error: `field` for BAD_USER_INPUT, `status` for ORDER_NOT_CANCELLABLE. */
  readonly extensions: Readonly<Record<string, unknown>>;

  constructor(code: SagaRejectionCode, message: string, extensions: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.code = code;
    this.extensions = extensions;
  }
}

// State ------------------------------------------------------------------------------------------

/** Before PlaceOrder: there is no order yet. */
export interface UnplacedOrderSagaState {
  readonly status: null;
}

/** A placed order: what `decide` needs to take the next step. */
export interface PlacedOrderSagaState {
  readonly status: OrderStatus;
  readonly orderId: string;
  readonly customerId: string;
  readonly items: readonly OrderLine[];
  readonly total: Money;
  readonly paymentMethod: string;
  /** ISO-8601 instant. */
  readonly deadlineAt: string;
  /** Whether payment has authorised the amount (it refunds it by itself when the order is cancelled). */
  readonly paymentAuthorized: boolean;
  /** The payment's id, once payment has answered. */
  readonly paymentId?: string;
}

/** The saga's state: `status` is null before placement. */
export type OrderSagaState = UnplacedOrderSagaState | PlacedOrderSagaState;

/** The state before PlaceOrder. */
export const initialOrderSagaState: OrderSagaState = Object.freeze({ status: null });

/** The facts `evolve` folds: accepted inputs and decided transitions. */
export type OrderSagaFact = OrderSagaInput | SagaTransition;

// ---------------------------------------------------------------------------------------------
// Rules

/** Statuses in which nothing moves the order any more. */
export const TERMINAL_STATUSES: readonly OrderStatus[] = Object.freeze(['DELIVERED', 'REJECTED', 'CANCELLED']);
/** Statuses from which an order can still be cancelled (before SHIPPED). */
export const CANCELLABLE_STATUSES: readonly OrderStatus[] = Object.freeze(['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED']);
/** Statuses in which the deadline cancels the order. */
export const EXPIRABLE_STATUSES: readonly OrderStatus[] = Object.freeze(['PENDING', 'AWAITING_PAYMENT']);

/** Whether `status` is terminal: DELIVERED, REJECTED or CANCELLED. */
export function isTerminal(status: OrderStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Limits of PlaceOrder; the GraphQL input documents the same. */
export const MAX_ORDER_LINES = 100;
export const MAX_LINE_QUANTITY = 1000;
/** The largest total: money is a GraphQL Int and a Postgres integer. */
export const MAX_TOTAL_AMOUNT = 2_147_483_647;

/** The deadline's cancellation reason. */
export const DEADLINE_REASON = 'deadline passed';

const NOTHING: SagaDecision = Object.freeze({ transition: null, emit: Object.freeze([]) as readonly OrderSagaEvent[] });
const CURRENCY_PATTERN = /^[A-Z]{3}$/;

/** Decides what an input does to the order in `state`; throws {@link SagaRejection} to refuse a command. */
export function decide(input: OrderSagaInput, state: OrderSagaState): SagaDecision {
  switch (input.type) {
    case 'PlaceOrder':
      return placeOrder(input, state);
    case 'CancelOrder':
      return cancelOrder(input, state);
    case 'ExpireOrder':
      return expireOrder(input, state);
    default:
      return onParticipantEvent(input, state);
  }
}

function placeOrder(command: PlaceOrder, state: OrderSagaState): SagaDecision {
  if (state.status !== null) {
    throw new SagaRejection('CONFLICT', `Order "${state.orderId}" has already been placed`, { id: state.orderId });
  }
  checkPlacement(command.data);
  const placed = placedState(command.data);
  return {
    transition: { status: 'PENDING' },
    emit: [
      {
        type: 'OrderPlaced',
        data: { orderId: placed.orderId, customerId: placed.customerId, items: placed.items, total: placed.total, deadlineAt: placed.deadlineAt },
      },
    ],
  };
}

function cancelOrder(command: CancelOrder, state: OrderSagaState): SagaDecision {
  const { orderId, by } = command.data;
  if (state.status === null) throw new SagaRejection('NOT_FOUND', `Order "${orderId}" does not exist`, { id: orderId });
  checkSameOrder(state, orderId, command.type);
  const admin = by.roles.includes('admin');
  // Ownership first: another customer learns nothing about the order, not even its status.
  if (by.customerId !== state.customerId && !admin) {
    throw new SagaRejection('FORBIDDEN', `Order "${state.orderId}" belongs to another customer`, { id: state.orderId });
  }
  const given = command.data.reason?.trim() ?? '';
  if (Array.from(given).length > MAX_REASON_LENGTH) {
    throw new SagaRejection('BAD_USER_INPUT', `"reason" must be at most ${MAX_REASON_LENGTH} characters`, { field: 'reason' });
  }
  if (state.status === 'CANCELLED') return NOTHING; // cancelling a cancelled order changes nothing
  if (!CANCELLABLE_STATUSES.includes(state.status)) {
    throw new SagaRejection('ORDER_NOT_CANCELLABLE', `Order "${state.orderId}" is ${state.status} and can no longer be cancelled`, {
      id: state.orderId,
      status: state.status,
    });
  }
  const reason = given !== '' ? given : by.customerId === state.customerId ? 'cancelled by the customer' : 'cancelled by an admin';
  return cancel(state, reason);
}

function expireOrder(command: ExpireOrder, state: OrderSagaState): SagaDecision {
  if (state.status === null) return NOTHING; // a timer for an order that was never placed
  checkSameOrder(state, command.data.orderId, command.type);
  if (!EXPIRABLE_STATUSES.includes(state.status)) return NOTHING;
  if (instant(command.data.now, 'now') < Date.parse(state.deadlineAt)) return NOTHING; // fired early
  return cancel(state, DEADLINE_REASON);
}

function onParticipantEvent(event: ParticipantEvent, state: OrderSagaState): SagaDecision {
  if (state.status === null) return NOTHING; // nothing to move: the orchestrator never asked
  checkSameOrder(state, event.data.orderId, event.type);
  const causedBy: CausedBy = { eventType: event.type, eventId: event.id };
  switch (event.type) {
    case 'StockReserved':
      if (state.status !== 'PENDING') return NOTHING;
      return {
        transition: { status: 'AWAITING_PAYMENT', causedBy },
        emit: [
          {
            type: 'PaymentRequested',
            data: { orderId: state.orderId, customerId: state.customerId, amount: state.total, paymentMethod: state.paymentMethod },
          },
        ],
      };
    case 'StockReservationFailed': {
      if (state.status !== 'PENDING') return NOTHING;
      const short = event.data.shortages.map((s) => `${s.sku} (requested ${s.requested}, available ${s.available})`).join(', ');
      const reason = clipReason(`insufficient stock: ${short}`);
      return {
        transition: { status: 'REJECTED', reason, causedBy },
        emit: [{ type: 'OrderRejected', data: { orderId: state.orderId, customerId: state.customerId, reason } }],
      };
    }
    case 'PaymentAuthorized':
      if (state.status !== 'AWAITING_PAYMENT') return NOTHING; // after a cancellation payment refunds by itself
      return {
        transition: { status: 'CONFIRMED', causedBy },
        emit: [
          {
            type: 'OrderConfirmed',
            data: { orderId: state.orderId, customerId: state.customerId, items: state.items.map(({ sku, quantity }) => ({ sku, quantity })) },
          },
        ],
      };
    case 'PaymentDeclined':
      if (state.status !== 'AWAITING_PAYMENT') return NOTHING;
      return cancel(state, clipReason(`payment declined: ${event.data.reason}`), causedBy);
    case 'PaymentFailed':
      if (state.status !== 'AWAITING_PAYMENT') return NOTHING;
      return cancel(state, clipReason(`payment failed: ${event.data.reason}`), causedBy);
    case 'ShipmentDispatched':
      if (state.status !== 'CONFIRMED') return NOTHING;
      return {
        transition: { status: 'SHIPPED', reason: clipReason(`dispatched with ${event.data.carrier}, tracking number ${event.data.trackingNumber}`), causedBy },
        emit: [],
      };
    case 'ShipmentDelivered':
      if (state.status !== 'SHIPPED') return NOTHING;
      return { transition: { status: 'DELIVERED', causedBy }, emit: [] };
    // Timeline-only: recorded in any status, the status stays.
    case 'StockReleased':
      return note(state, `stock released: ${units(event.data.items)}`, causedBy);
    case 'StockCommitted':
      return note(state, `stock committed: ${units(event.data.items)}`, causedBy);
    case 'PaymentRefunded':
      return note(state, `payment refunded: ${formatMoney(event.data.amount)}`, causedBy);
    case 'ShipmentCreated':
      return note(state, 'shipment created', causedBy);
    case 'ShipmentCancelled':
      return note(state, 'shipment cancelled', causedBy);
    default:
      return unreachable(event);
  }
}

function cancel(state: PlacedOrderSagaState, reason: string, causedBy?: CausedBy): SagaDecision {
  return {
    transition: causedBy ? { status: 'CANCELLED', reason, causedBy } : { status: 'CANCELLED', reason },
    emit: [{ type: 'OrderCancelled', data: { orderId: state.orderId, customerId: state.customerId, reason, previousStatus: state.status } }],
  };
}

function note(state: PlacedOrderSagaState, reason: string, causedBy: CausedBy): SagaDecision {
  return { transition: { status: state.status, reason: clipReason(reason), causedBy }, emit: [] };
}

/** Folds one fact into the state: an input `decide` accepted, or a transition it decided. */
export function evolve(state: OrderSagaState, fact: OrderSagaFact): OrderSagaState {
  if (!('type' in fact)) return state.status === null ? state : { ...state, status: fact.status };
  if (fact.type === 'PlaceOrder') return state.status === null ? placedState(fact.data) : state;
  if (state.status === null) return state;
  switch (fact.type) {
    case 'PaymentAuthorized':
      return { ...state, paymentAuthorized: true, paymentId: fact.data.paymentId };
    case 'PaymentDeclined':
    case 'PaymentFailed':
      return { ...state, paymentId: state.paymentId ?? fact.data.paymentId };
    default:
      return state;
  }
}

/**
 * `decide`, then `evolve` over the input and the transition: the state after the input, with the
 * decision. Throws what `decide` throws; the state is then unchanged.
 */
export function react(state: OrderSagaState, input: OrderSagaInput): SagaDecision & { readonly state: OrderSagaState } {
  const decision = decide(input, state);
  let next = evolve(state, input);
  if (decision.transition) next = evolve(next, decision.transition);
  return { ...decision, state: next };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkPlacement(data: PlaceOrder['data']): void {
  const bad = (message: string, field: string): never => {
    throw new SagaRejection('BAD_USER_INPUT', message, { field });
  };
  if (!isUuid(data.orderId)) bad(`"orderId" must be a UUID, got "${data.orderId}"`, 'orderId');
  if (data.customerId.trim() === '') bad('"customerId" must not be empty', 'customerId');
  if (data.paymentMethod.trim() === '') bad('"paymentMethod" must not be empty', 'paymentMethod');
  if (data.items.length < 1 || data.items.length > MAX_ORDER_LINES) {
    bad(`An order has 1 to ${MAX_ORDER_LINES} lines, got ${data.items.length}`, 'items');
  }
  const skus = new Set<string>();
  const currency = data.items[0].unitPrice.currency;
  let total = 0;
  data.items.forEach((item, i) => {
    const at = `items[${i}]`;
    if (!SKU_PATTERN.test(item.sku)) bad(`"${at}.sku" must be 1 to 64 letters, digits, '.', '_' or '-'`, `${at}.sku`);
    if (skus.has(item.sku)) bad(`"${at}.sku": each sku may appear once, "${item.sku}" is repeated`, `${at}.sku`);
    skus.add(item.sku);
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_LINE_QUANTITY) {
      bad(`"${at}.quantity" must be an integer from 1 to ${MAX_LINE_QUANTITY}, got ${item.quantity}`, `${at}.quantity`);
    }
    if (!Number.isSafeInteger(item.unitPrice.amount) || item.unitPrice.amount < 0) {
      bad(`"${at}.unitPrice" must be a non-negative integer amount of minor units`, `${at}.unitPrice`);
    }
    if (!CURRENCY_PATTERN.test(item.unitPrice.currency) || item.unitPrice.currency !== currency) {
      bad(`"${at}.unitPrice" must be in ${currency}, like every line of the order`, `${at}.unitPrice`);
    }
    total += item.quantity * item.unitPrice.amount;
  });
  if (total > MAX_TOTAL_AMOUNT) bad(`The order total must be at most ${MAX_TOTAL_AMOUNT} minor units`, 'items');
  // now and deadlineAt come from the service, never from the client: a bad one is a bug, not bad input.
  if (instant(data.deadlineAt, 'deadlineAt') <= instant(data.now, 'now')) {
    throw new Error(`PlaceOrder: deadlineAt ${data.deadlineAt} must be after now ${data.now}`);
  }
}

/** The state right after an accepted PlaceOrder; `decide` has checked the data. */
function placedState(data: PlaceOrder['data']): PlacedOrderSagaState {
  const items = data.items.map((item) => ({
    sku: item.sku,
    quantity: item.quantity,
    unitPrice: { amount: item.unitPrice.amount, currency: item.unitPrice.currency },
  }));
  return {
    status: 'PENDING',
    orderId: data.orderId,
    customerId: data.customerId,
    items,
    total: { amount: items.reduce((sum, item) => sum + item.quantity * item.unitPrice.amount, 0), currency: items[0].unitPrice.currency },
    paymentMethod: data.paymentMethod,
    deadlineAt: new Date(data.deadlineAt).toISOString(),
    paymentAuthorized: false,
  };
}

/** An input for another order than the state's is a bug in the caller (it loaded the wrong saga). */
function checkSameOrder(state: PlacedOrderSagaState, orderId: string, what: string): void {
  if (orderId.toLowerCase() !== state.orderId.toLowerCase()) {
    throw new Error(`${what} for order ${orderId} was given the saga state of order ${state.orderId}`);
  }
}

function instant(value: string, name: string): number {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`"${name}" is not an ISO-8601 instant: "${value}"`);
  return ms;
}

function units(items: readonly SkuQuantity[]): string {
  return items.map((item) => `${item.quantity} × ${item.sku}`).join(', ');
}

/** 2998 EUR → "29.98 EUR", with the currency's own number of decimals. */
function formatMoney(money: Money): string {
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency: money.currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    /* an unknown code: assume cents */
  }
  return `${(money.amount / 10 ** digits).toFixed(digits)} ${money.currency}`;
}

function unreachable(value: never): never {
  throw new Error(`unhandled saga input ${JSON.stringify(value)}`);
}
