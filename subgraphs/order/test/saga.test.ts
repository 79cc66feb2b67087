/**
 * The order saga, given/when/then (ADR 0008): given the inputs the saga has accepted, when one more
 * arrives, then this timeline entry and these order events, or this rejection. No I/O. Every
 * emitted event is also wrapped in its envelope and validated against schema/events/, so the saga
 * cannot emit what its consumers would refuse.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { newEvent } from '@swiftcart/platform/events';
import type { OrderStatus } from '../src/entities.ts';
import {
  SagaRejection,
  decide,
  evolve,
  initialOrderSagaState,
  isParticipantEvent,
  isTerminal,
  react,
  type CancelOrder,
  type ExpireOrder,
  type OrderLine,
  type OrderSagaEvent,
  type OrderSagaInput,
  type OrderSagaState,
  type ParticipantEvent,
  type PlaceOrder,
  type SagaDecision,
  type SagaRejectionCode,
  type SagaTransition,
} from '../src/saga.ts';

// --- schemas --------------------------------------------------------------------------------------

const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;
const SCHEMA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../schema/events');
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);
for (const file of readdirSync(SCHEMA_DIR)) ajv.addSchema(JSON.parse(readFileSync(path.join(SCHEMA_DIR, file), 'utf8')));

let envelopeIds = 0;
function assertSchemaValid(event: OrderSagaEvent): void {
  const envelope = newEvent(event.type, event.data, {
    id: `0193a1b2-7c4d-7e5f-8a6b-${String(++envelopeIds).padStart(12, '0')}`,
    occurredAt: '2026-11-22T10:15:01.000Z',
    causationId: null,
  });
  const validate = ajv.getSchema(`https://swiftcart.dev/events/${event.type}.v1.json`);
  assert.ok(validate, `a schema for ${event.type}`);
  assert.ok(validate(envelope), `${event.type} envelope is schema-valid: ${JSON.stringify(validate.errors)}`);
}

// --- fixtures -------------------------------------------------------------------------------------

const ORDER_ID = '01936f3a-5b2c-7d4e-9f10-2a3b4c5d6e7f';
const OTHER_ORDER_ID = '01936f3a-5b2c-7d4e-9f10-000000000000';
const ALICE = 'alice';
const PAYMENT_ID = '01936f3a-aaaa-7aaa-8aaa-aaaaaaaaaaaa';
const SHIPMENT_ID = '01936f3a-bbbb-7bbb-8bbb-bbbbbbbbbbbb';
const NOW = '2026-11-22T10:15:00.000Z';
const DEADLINE = '2026-11-22T10:30:00.000Z';
const AFTER_DEADLINE = '2026-11-22T10:30:00.001Z';
const eur = (amount: number) => ({ amount, currency: 'EUR' });
const ITEMS: readonly OrderLine[] = [
  { sku: 'MUG-BLUE', quantity: 2, unitPrice: eur(1299) },
  { sku: 'TEE-M-BLACK', quantity: 1, unitPrice: eur(2400) },
];
const TOTAL = eur(4998);

/** Freezes a value and everything in it, so a test fails if the saga mutates its inputs. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

let eventCounter = 0;
const nextEventId = () => `01936f3b-0000-7000-8000-${String(++eventCounter).padStart(12, '0')}`;

function placeOrder(overrides: Partial<PlaceOrder['data']> = {}): PlaceOrder {
  return deepFreeze({
    type: 'PlaceOrder',
    data: { orderId: ORDER_ID, customerId: ALICE, items: ITEMS, paymentMethod: 'tok_visa', deadlineAt: DEADLINE, now: NOW, ...overrides },
  });
}
function cancelOrder(by: { customerId: string; roles?: string[] } = { customerId: ALICE }, reason?: string | null): CancelOrder {
  return deepFreeze({ type: 'CancelOrder', data: { orderId: ORDER_ID, by: { customerId: by.customerId, roles: by.roles ?? ['customer'] }, reason, now: NOW } });
}
function expireOrder(now = AFTER_DEADLINE): ExpireOrder {
  return deepFreeze({ type: 'ExpireOrder', data: { orderId: ORDER_ID, now } });
}
/** A participant event with a fresh id; `data` gets the order id. */
function event<T extends ParticipantEvent['type']>(
  type: T,
  data: Omit<Extract<ParticipantEvent, { type: T }>['data'], 'orderId'>,
): Extract<ParticipantEvent, { type: T }> {
  return deepFreeze({ type, id: nextEventId(), data: { orderId: ORDER_ID, ...data } }) as unknown as Extract<ParticipantEvent, { type: T }>;
}
const skuQuantities = ITEMS.map(({ sku, quantity }) => ({ sku, quantity }));
const stockReserved = () => event('StockReserved', { items: skuQuantities });
const stockReservationFailed = () => event('StockReservationFailed', { shortages: [{ sku: 'TEE-M-BLACK', requested: 1, available: 0 }] });
const stockReleased = () => event('StockReleased', { items: skuQuantities });
const stockCommitted = () => event('StockCommitted', { items: skuQuantities });
const paymentAuthorized = () => event('PaymentAuthorized', { paymentId: PAYMENT_ID, amount: TOTAL, providerRef: 'mock_auth_1' });
const paymentDeclined = (reason = 'card declined') => event('PaymentDeclined', { paymentId: PAYMENT_ID, amount: TOTAL, reason });
const paymentFailed = () => event('PaymentFailed', { paymentId: PAYMENT_ID, reason: 'provider timed out after 3 attempts' });
const paymentRefunded = () => event('PaymentRefunded', { paymentId: PAYMENT_ID, refundId: '01936f3a-cccc-7ccc-8ccc-cccccccccccc', amount: TOTAL });
const shipmentCreated = () => event('ShipmentCreated', { shipmentId: SHIPMENT_ID });
const shipmentDispatched = () => event('ShipmentDispatched', { shipmentId: SHIPMENT_ID, carrier: 'DHL', trackingNumber: '00340434161094015902' });
const shipmentDelivered = () => event('ShipmentDelivered', { shipmentId: SHIPMENT_ID });
const shipmentCancelled = () => event('ShipmentCancelled', { shipmentId: SHIPMENT_ID });

/** A history that leaves the order in each status. */
const HISTORY: Record<OrderStatus, () => OrderSagaInput[]> = {
  PENDING: () => [placeOrder()],
  AWAITING_PAYMENT: () => [placeOrder(), stockReserved()],
  CONFIRMED: () => [placeOrder(), stockReserved(), paymentAuthorized()],
  SHIPPED: () => [placeOrder(), stockReserved(), paymentAuthorized(), shipmentDispatched()],
  DELIVERED: () => [placeOrder(), stockReserved(), paymentAuthorized(), shipmentDispatched(), shipmentDelivered()],
  REJECTED: () => [placeOrder(), stockReservationFailed()],
  CANCELLED: () => [placeOrder(), stockReserved(), cancelOrder()],
};
const STATUSES = Object.keys(HISTORY) as OrderStatus[];

// --- given / when / then ---------------------------------------------------------------------------

interface Then {
  /** The decision is this transition (null for none) and these emitted events, exactly. */
  then(transition: SagaTransition | null, emit?: readonly OrderSagaEvent[]): OrderSagaState;
  /** No timeline entry, no event. */
  thenNothing(): OrderSagaState;
  /** decide refuses with this code (and this `field`, for BAD_USER_INPUT). */
  thenRejects(code: SagaRejectionCode, field?: string): void;
}

/** Folds the history through decide and evolve (each step must be accepted), then runs `input`. */
function given(...history: OrderSagaInput[]) {
  let state = initialOrderSagaState;
  for (const input of history) state = react(state, input).state;
  const before = state;
  return {
    state,
    inStatus(status: OrderStatus | null) {
      assert.equal(state.status, status, 'the history leads to the expected status');
      return this;
    },
    when(input: OrderSagaInput): Then {
      const run = () => react(before, input);
      return {
        then(transition, emit = []) {
          const result = run();
          const decision: SagaDecision = { transition: result.transition, emit: result.emit };
          assert.deepEqual(decision, { transition, emit });
          for (const event of result.emit) assertSchemaValid(event);
          if (transition) assert.equal(result.state.status, transition.status, 'evolve applied the transition');
          return result.state;
        },
        thenNothing() {
          return this.then(null, []);
        },
        thenRejects(code, field) {
          assert.throws(run, (error: unknown) => {
            assert.ok(error instanceof SagaRejection, `a SagaRejection, got ${String(error)}`);
            assert.equal(error.code, code, error.message);
            if (field !== undefined) assert.equal(error.extensions.field, field);
            return true;
          });
        },
      };
    },
  };
}

const orderPlaced = (): OrderSagaEvent => ({
  type: 'OrderPlaced',
  data: { orderId: ORDER_ID, customerId: ALICE, items: ITEMS, total: TOTAL, deadlineAt: DEADLINE },
});
const orderCancelled = (previousStatus: OrderStatus, reason: string): OrderSagaEvent => ({
  type: 'OrderCancelled',
  data: { orderId: ORDER_ID, customerId: ALICE, reason, previousStatus },
});
const by = (input: ParticipantEvent) => ({ eventType: input.type, eventId: input.id });

// --- tests ----------------------------------------------------------------------------------------

describe('order saga', () => {
  describe('PlaceOrder', () => {
    test('places the order: PENDING and OrderPlaced with the total', () => {
      const state = given().inStatus(null).when(placeOrder()).then({ status: 'PENDING' }, [orderPlaced()]);
      assert.deepEqual(state, {
        status: 'PENDING',
        orderId: ORDER_ID,
        customerId: ALICE,
        items: ITEMS,
        total: TOTAL,
        paymentMethod: 'tok_visa',
        deadlineAt: DEADLINE,
        paymentAuthorized: false,
      });
    });

    test('accepts the limits: 100 lines, quantity 1,000, a price of 0', () => {
      const items = Array.from({ length: 100 }, (_, i) => ({ sku: `SKU-${i}`, quantity: i === 0 ? 1000 : 1, unitPrice: eur(i === 1 ? 0 : 100) }));
      const total = eur(1000 * 100 + 98 * 100);
      given()
        .when(placeOrder({ items }))
        .then({ status: 'PENDING' }, [
          {
            type: 'OrderPlaced',
            data: { orderId: ORDER_ID, customerId: ALICE, items, total, deadlineAt: DEADLINE },
          },
        ]);
    });

    test('normalises deadlineAt to an ISO-8601 UTC instant', () => {
      const state = given()
        .when(placeOrder({ deadlineAt: '2026-11-22T11:30:00+01:00' }))
        .then({ status: 'PENDING' }, [
          {
            type: 'OrderPlaced',
            data: { orderId: ORDER_ID, customerId: ALICE, items: ITEMS, total: TOTAL, deadlineAt: DEADLINE },
          },
        ]);
      assert.equal(state.status !== null && state.deadlineAt, DEADLINE);
    });

    const line = (overrides: Partial<OrderLine>): OrderLine => ({ sku: 'SKU-1', quantity: 1, unitPrice: eur(100), ...overrides });
    const invalid: [string, Partial<PlaceOrder['data']>, string][] = [
      ['an empty cart', { items: [] }, 'items'],
      ['101 lines', { items: Array.from({ length: 101 }, (_, i) => line({ sku: `SKU-${i}` })) }, 'items'],
      ['quantity 0', { items: [line({ quantity: 0 })] }, 'items[0].quantity'],
      ['a negative quantity', { items: [line({ quantity: -1 })] }, 'items[0].quantity'],
      ['quantity 1,001', { items: [line({ quantity: 1001 })] }, 'items[0].quantity'],
      ['a fractional quantity', { items: [line({ quantity: 1.5 })] }, 'items[0].quantity'],
      ['the same sku twice (lines are not merged)', { items: [line({}), line({ sku: 'SKU-2' }), line({ quantity: 2 })] }, 'items[2].sku'],
      ['a malformed sku', { items: [line({ sku: 'no spaces' })] }, 'items[0].sku'],
      ['a negative unit price', { items: [line({ unitPrice: eur(-1) })] }, 'items[0].unitPrice'],
      ['a fractional unit price', { items: [line({ unitPrice: eur(9.99) })] }, 'items[0].unitPrice'],
      ['two currencies', { items: [line({}), line({ sku: 'SKU-2', unitPrice: { amount: 100, currency: 'USD' } })] }, 'items[1].unitPrice'],
      ['a malformed currency', { items: [line({ unitPrice: { amount: 100, currency: 'eur' } })] }, 'items[0].unitPrice'],
      ['a total beyond a 32-bit integer', { items: [line({ quantity: 1000, unitPrice: eur(2_147_484) })] }, 'items'],
      ['an order id that is not a UUID', { orderId: 'order-1' }, 'orderId'],
      ['an empty customer id', { customerId: '' }, 'customerId'],
      ['a blank payment method', { paymentMethod: '  ' }, 'paymentMethod'],
    ];
    for (const [what, overrides, field] of invalid) {
      test(`rejects ${what}: BAD_USER_INPUT on ${field}`, () => {
        given().when(placeOrder(overrides)).thenRejects('BAD_USER_INPUT', field);
      });
    }

    test('rejects placing an order that is already placed: CONFLICT', () => {
      for (const status of STATUSES)
        given(...HISTORY[status]())
          .inStatus(status)
          .when(placeOrder())
          .thenRejects('CONFLICT');
    });

    test('a deadline that is not after now is a bug of the caller, not a rejection', () => {
      assert.throws(
        () => decide(placeOrder({ deadlineAt: NOW }), initialOrderSagaState),
        (error: unknown) => error instanceof Error && !(error instanceof SagaRejection),
      );
      assert.throws(() => decide(placeOrder({ now: 'yesterday' }), initialOrderSagaState), /ISO-8601/);
    });
  });

  describe('StockReserved', () => {
    test('PENDING → AWAITING_PAYMENT and PaymentRequested for the total with the payment method', () => {
      const reserved = stockReserved();
      given(...HISTORY.PENDING())
        .when(reserved)
        .then({ status: 'AWAITING_PAYMENT', causedBy: by(reserved) }, [
          {
            type: 'PaymentRequested',
            data: { orderId: ORDER_ID, customerId: ALICE, amount: TOTAL, paymentMethod: 'tok_visa' },
          },
        ]);
    });
    test('is ignored when the order is not PENDING (a redelivery, or after a deadline cancellation)', () => {
      for (const status of STATUSES.filter((s) => s !== 'PENDING'))
        given(...HISTORY[status]())
          .inStatus(status)
          .when(stockReserved())
          .thenNothing();
    });
  });

  describe('StockReservationFailed', () => {
    test('PENDING → REJECTED and OrderRejected naming the short skus', () => {
      const failed = stockReservationFailed();
      const reason = 'insufficient stock: TEE-M-BLACK (requested 1, available 0)';
      given(...HISTORY.PENDING())
        .when(failed)
        .then({ status: 'REJECTED', reason, causedBy: by(failed) }, [
          {
            type: 'OrderRejected',
            data: { orderId: ORDER_ID, customerId: ALICE, reason },
          },
        ]);
    });
    test('clips a long list of shortages to 500 characters', () => {
      const shortages = Array.from({ length: 50 }, (_, i) => ({ sku: `SKU-WITH-A-LONG-NAME-${i}`, requested: 10, available: 0 }));
      const decision = decide(event('StockReservationFailed', { shortages }), given(...HISTORY.PENDING()).state);
      assert.equal(Array.from(decision.transition!.reason!).length, 500);
      assert.ok(decision.transition!.reason!.endsWith('…'));
      assertSchemaValid(decision.emit[0]);
    });
    test('is ignored when the order is not PENDING', () => {
      for (const status of STATUSES.filter((s) => s !== 'PENDING'))
        given(...HISTORY[status]())
          .when(stockReservationFailed())
          .thenNothing();
    });
  });

  describe('PaymentAuthorized', () => {
    test('AWAITING_PAYMENT → CONFIRMED and OrderConfirmed with the lines', () => {
      const authorized = paymentAuthorized();
      const state = given(...HISTORY.AWAITING_PAYMENT())
        .when(authorized)
        .then({ status: 'CONFIRMED', causedBy: by(authorized) }, [
          {
            type: 'OrderConfirmed',
            data: { orderId: ORDER_ID, customerId: ALICE, items: skuQuantities },
          },
        ]);
      assert.ok(state.status !== null && state.paymentAuthorized && state.paymentId === PAYMENT_ID);
    });
    test('after a deadline cancellation: nothing (payment refunds by itself on OrderCancelled), but the state knows', () => {
      const state = given(placeOrder(), stockReserved(), expireOrder()).inStatus('CANCELLED').when(paymentAuthorized()).thenNothing();
      assert.ok(state.status === 'CANCELLED' && state.paymentAuthorized && state.paymentId === PAYMENT_ID);
    });
    test('is ignored when the order is not AWAITING_PAYMENT', () => {
      for (const status of STATUSES.filter((s) => s !== 'AWAITING_PAYMENT'))
        given(...HISTORY[status]())
          .when(paymentAuthorized())
          .thenNothing();
    });
  });

  describe('PaymentDeclined and PaymentFailed', () => {
    test('a decline: AWAITING_PAYMENT → CANCELLED and OrderCancelled, so inventory releases', () => {
      const declined = paymentDeclined();
      const reason = 'payment declined: card declined';
      const state = given(...HISTORY.AWAITING_PAYMENT())
        .when(declined)
        .then({ status: 'CANCELLED', reason, causedBy: by(declined) }, [orderCancelled('AWAITING_PAYMENT', reason)]);
      assert.ok(state.status !== null && !state.paymentAuthorized && state.paymentId === PAYMENT_ID);
    });
    test('a failure (timeout after retries, circuit open): AWAITING_PAYMENT → CANCELLED and OrderCancelled', () => {
      const failed = paymentFailed();
      const reason = 'payment failed: provider timed out after 3 attempts';
      given(...HISTORY.AWAITING_PAYMENT())
        .when(failed)
        .then({ status: 'CANCELLED', reason, causedBy: by(failed) }, [orderCancelled('AWAITING_PAYMENT', reason)]);
    });
    test('a decline reason is clipped to 500 characters', () => {
      const decision = decide(paymentDeclined('x'.repeat(600)), given(...HISTORY.AWAITING_PAYMENT()).state);
      assert.equal(Array.from(decision.transition!.reason!).length, 500);
      assertSchemaValid(decision.emit[0]);
    });
    test('are ignored when the order is not AWAITING_PAYMENT', () => {
      for (const status of STATUSES.filter((s) => s !== 'AWAITING_PAYMENT')) {
        given(...HISTORY[status]())
          .when(paymentDeclined())
          .thenNothing();
        given(...HISTORY[status]())
          .when(paymentFailed())
          .thenNothing();
      }
    });
  });

  describe('ShipmentDispatched and ShipmentDelivered', () => {
    test('CONFIRMED → SHIPPED, no event', () => {
      const dispatched = shipmentDispatched();
      given(...HISTORY.CONFIRMED())
        .when(dispatched)
        .then({ status: 'SHIPPED', reason: 'dispatched with DHL, tracking number 00340434161094015902', causedBy: by(dispatched) });
    });
    test('SHIPPED → DELIVERED, no event', () => {
      const delivered = shipmentDelivered();
      given(...HISTORY.SHIPPED())
        .when(delivered)
        .then({ status: 'DELIVERED', causedBy: by(delivered) });
    });
    test('ShipmentDispatched is ignored unless CONFIRMED', () => {
      for (const status of STATUSES.filter((s) => s !== 'CONFIRMED'))
        given(...HISTORY[status]())
          .when(shipmentDispatched())
          .thenNothing();
    });
    test('ShipmentDelivered is ignored unless SHIPPED', () => {
      for (const status of STATUSES.filter((s) => s !== 'SHIPPED'))
        given(...HISTORY[status]())
          .when(shipmentDelivered())
          .thenNothing();
    });
  });

  describe('timeline-only events', () => {
    const cases: [string, () => ParticipantEvent, string][] = [
      ['StockReleased', stockReleased, 'stock released: 2 × MUG-BLUE, 1 × TEE-M-BLACK'],
      ['StockCommitted', stockCommitted, 'stock committed: 2 × MUG-BLUE, 1 × TEE-M-BLACK'],
      ['PaymentRefunded', paymentRefunded, 'payment refunded: 49.98 EUR'],
      ['ShipmentCreated', shipmentCreated, 'shipment created'],
      ['ShipmentCancelled', shipmentCancelled, 'shipment cancelled'],
    ];
    for (const [type, make, reason] of cases) {
      test(`${type} adds a timeline entry in every status, terminal ones included, and changes nothing else`, () => {
        for (const status of STATUSES) {
          const input = make();
          const g = given(...HISTORY[status]());
          const after = g.when(input).then({ status, reason, causedBy: by(input) });
          assert.deepEqual(after, g.state);
        }
      });
      test(`${type} before placement does nothing`, () => {
        given().when(make()).thenNothing();
      });
    }
  });

  describe('CancelOrder', () => {
    for (const status of ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED'] as const) {
      test(`by its customer when ${status}: CANCELLED and OrderCancelled with the previous status`, () => {
        given(...HISTORY[status]())
          .inStatus(status)
          .when(cancelOrder({ customerId: ALICE }, 'changed my mind'))
          .then({ status: 'CANCELLED', reason: 'changed my mind' }, [orderCancelled(status, 'changed my mind')]);
      });
    }
    test('without a reason (null, empty or blank) the reason says who cancelled', () => {
      for (const reason of [undefined, null, '', '   ']) {
        given(...HISTORY.PENDING())
          .when(cancelOrder({ customerId: ALICE }, reason))
          .then({ status: 'CANCELLED', reason: 'cancelled by the customer' }, [orderCancelled('PENDING', 'cancelled by the customer')]);
      }
      given(...HISTORY.CONFIRMED())
        .when(cancelOrder({ customerId: 'root', roles: ['admin'] }))
        .then({ status: 'CANCELLED', reason: 'cancelled by an admin' }, [orderCancelled('CONFIRMED', 'cancelled by an admin')]);
    });
    test('a reason is trimmed', () => {
      given(...HISTORY.PENDING())
        .when(cancelOrder({ customerId: ALICE }, '  too slow  '))
        .then({ status: 'CANCELLED', reason: 'too slow' }, [orderCancelled('PENDING', 'too slow')]);
    });
    test("by an admin of another customer's order", () => {
      given(...HISTORY.AWAITING_PAYMENT())
        .when(cancelOrder({ customerId: 'root', roles: ['customer', 'admin'] }, 'fraud suspected'))
        .then({ status: 'CANCELLED', reason: 'fraud suspected' }, [orderCancelled('AWAITING_PAYMENT', 'fraud suspected')]);
    });
    test('by another customer: FORBIDDEN, in every status (the status is not revealed)', () => {
      for (const status of STATUSES)
        given(...HISTORY[status]())
          .when(cancelOrder({ customerId: 'mallory' }))
          .thenRejects('FORBIDDEN');
    });
    for (const status of ['SHIPPED', 'DELIVERED', 'REJECTED'] as const) {
      test(`when ${status}: ORDER_NOT_CANCELLABLE, for the customer and for an admin`, () => {
        given(...HISTORY[status]())
          .inStatus(status)
          .when(cancelOrder())
          .thenRejects('ORDER_NOT_CANCELLABLE');
        given(...HISTORY[status]())
          .when(cancelOrder({ customerId: 'root', roles: ['admin'] }))
          .thenRejects('ORDER_NOT_CANCELLABLE');
      });
    }
    test('ORDER_NOT_CANCELLABLE tells the status', () => {
      assert.throws(
        () => decide(cancelOrder(), given(...HISTORY.SHIPPED()).state),
        (error: unknown) => error instanceof SagaRejection && error.extensions.status === 'SHIPPED',
      );
    });
    test('cancelling a cancelled order is idempotent: no transition, no event', () => {
      for (const cancelled of [HISTORY.CANCELLED(), [placeOrder(), stockReserved(), paymentDeclined()], [placeOrder(), expireOrder()]]) {
        given(...cancelled)
          .inStatus('CANCELLED')
          .when(cancelOrder())
          .thenNothing();
        given(...cancelled)
          .when(cancelOrder({ customerId: 'root', roles: ['admin'] }, 'again'))
          .thenNothing();
      }
    });
    test('a reason over 500 characters: BAD_USER_INPUT on reason; 500 is fine', () => {
      given(...HISTORY.PENDING())
        .when(cancelOrder({ customerId: ALICE }, 'x'.repeat(501)))
        .thenRejects('BAD_USER_INPUT', 'reason');
      given(...HISTORY.PENDING())
        .when(cancelOrder({ customerId: ALICE }, '€'.repeat(500)))
        .then({ status: 'CANCELLED', reason: '€'.repeat(500) }, [orderCancelled('PENDING', '€'.repeat(500))]);
    });
    test('an order that was never placed: NOT_FOUND', () => {
      given().when(cancelOrder()).thenRejects('NOT_FOUND');
    });
  });

  describe('ExpireOrder (the saga deadline)', () => {
    for (const status of ['PENDING', 'AWAITING_PAYMENT'] as const) {
      test(`when ${status}: CANCELLED, reason "deadline passed", OrderCancelled`, () => {
        given(...HISTORY[status]())
          .inStatus(status)
          .when(expireOrder())
          .then({ status: 'CANCELLED', reason: 'deadline passed' }, [orderCancelled(status, 'deadline passed')]);
      });
    }
    test('exactly at the deadline it cancels; before it, nothing (the timer fired early)', () => {
      given(...HISTORY.PENDING())
        .when(expireOrder(DEADLINE))
        .then({ status: 'CANCELLED', reason: 'deadline passed' }, [orderCancelled('PENDING', 'deadline passed')]);
      given(...HISTORY.AWAITING_PAYMENT())
        .when(expireOrder('2026-11-22T10:29:59.999Z'))
        .thenNothing();
    });
    for (const status of ['CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED'] as const) {
      test(`when ${status}: nothing`, () => {
        given(...HISTORY[status]())
          .inStatus(status)
          .when(expireOrder())
          .thenNothing();
      });
    }
    test('for an order that was never placed: nothing', () => {
      given().when(expireOrder()).thenNothing();
    });
  });

  describe('terminal statuses', () => {
    const steps: (() => ParticipantEvent)[] = [
      stockReserved,
      stockReservationFailed,
      paymentAuthorized,
      paymentDeclined,
      paymentFailed,
      shipmentDispatched,
      shipmentDelivered,
    ];
    for (const status of STATUSES.filter(isTerminal)) {
      test(`${status}: no participant event moves the order or emits anything`, () => {
        for (const step of steps)
          given(...HISTORY[status]())
            .inStatus(status)
            .when(step())
            .thenNothing();
      });
    }
    test('the terminal statuses are DELIVERED, REJECTED and CANCELLED', () => {
      assert.deepEqual(STATUSES.filter(isTerminal), ['DELIVERED', 'REJECTED', 'CANCELLED']);
    });
    test('a participant event before placement does nothing', () => {
      for (const step of steps) given().when(step()).thenNothing();
    });
  });

  describe('whole sagas', () => {
    test('happy path: PENDING → AWAITING_PAYMENT → CONFIRMED → SHIPPED → DELIVERED, with the timeline-only events between', () => {
      const inputs: OrderSagaInput[] = [
        placeOrder(),
        stockReserved(),
        paymentAuthorized(),
        stockCommitted(),
        shipmentCreated(),
        shipmentDispatched(),
        shipmentDelivered(),
      ];
      let state = initialOrderSagaState;
      const timeline: string[] = [];
      const emitted: string[] = [];
      for (const input of inputs) {
        const result = react(state, input);
        state = result.state;
        if (result.transition) timeline.push(result.transition.status);
        emitted.push(...result.emit.map((e) => e.type));
      }
      assert.deepEqual(timeline, ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'CONFIRMED', 'CONFIRMED', 'SHIPPED', 'DELIVERED']);
      assert.deepEqual(emitted, ['OrderPlaced', 'PaymentRequested', 'OrderConfirmed']);
    });

    test('cancellation with refund: CONFIRMED → CANCELLED; the compensations only go on the timeline', () => {
      const g = given(placeOrder(), stockReserved(), paymentAuthorized(), shipmentCreated(), cancelOrder({ customerId: ALICE }, 'changed my mind')).inStatus(
        'CANCELLED',
      );
      for (const compensation of [stockReleased(), paymentRefunded(), shipmentCancelled()]) {
        g.when(compensation).then({ status: 'CANCELLED', reason: decide(compensation, g.state).transition!.reason, causedBy: by(compensation) });
      }
    });
  });

  describe('contract of decide and evolve', () => {
    test('an input for another order is a bug of the caller, not a rejection', () => {
      const state = given(...HISTORY.PENDING()).state;
      const foreign = deepFreeze({ type: 'StockReserved' as const, id: nextEventId(), data: { orderId: OTHER_ORDER_ID, items: skuQuantities } });
      assert.throws(
        () => decide(foreign, state),
        (error: unknown) => error instanceof Error && !(error instanceof SagaRejection),
      );
      assert.throws(() => decide({ type: 'CancelOrder', data: { ...cancelOrder().data, orderId: OTHER_ORDER_ID } }, state), /saga state of order/);
    });

    test('order ids compare case-insensitively', () => {
      const state = given(...HISTORY.PENDING()).state;
      const upper = deepFreeze({ type: 'StockReserved' as const, id: nextEventId(), data: { orderId: ORDER_ID.toUpperCase(), items: skuQuantities } });
      assert.equal(decide(upper, state).transition?.status, 'AWAITING_PAYMENT');
    });

    test('a rejection leaves the state as it was', () => {
      const state = deepFreeze(given(...HISTORY.SHIPPED()).state);
      assert.throws(() => react(state, cancelOrder()), SagaRejection);
      assert.equal(state.status, 'SHIPPED');
    });

    test('evolve applies a transition to a placed order and ignores one before placement', () => {
      const state = given(...HISTORY.PENDING()).state;
      assert.equal(evolve(state, { status: 'AWAITING_PAYMENT' }).status, 'AWAITING_PAYMENT');
      assert.equal(evolve(initialOrderSagaState, { status: 'PENDING' }), initialOrderSagaState);
      assert.equal(evolve(state, placeOrder({ paymentMethod: 'tok_other' })), state, 'a second placement changes nothing');
    });

    test("isParticipantEvent tells the saga's inputs from other event types", () => {
      assert.ok(isParticipantEvent({ type: 'PaymentRefunded' }));
      assert.ok(!isParticipantEvent({ type: 'OrderPlaced' }));
      assert.ok(!isParticipantEvent({ type: 'ProductCreated' }));
    });

    test('its events are keyed and correlated by the order id in their envelopes', () => {
      const [placed] = decide(placeOrder(), initialOrderSagaState).emit;
      const envelope = newEvent(placed.type, placed.data, { id: '0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b', occurredAt: NOW, causationId: null });
      assert.deepEqual(envelope, {
        id: '0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b',
        type: 'OrderPlaced',
        version: 1,
        source: 'order',
        aggregateType: 'Order',
        aggregateId: ORDER_ID,
        occurredAt: NOW,
        correlationId: ORDER_ID,
        causationId: null,
        data: placed.data,
      });
    });
  });
});
