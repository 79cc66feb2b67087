/**
 * The pure parts of the order mutations and the saga store, without I/O: settings, input checks,
 * the request hash behind idempotency, and the mapping of stored rows to the saga state.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseSettings } from '@swiftcart/platform';
import { canonicalJson, checkPlaceOrderInput, rejectionError, requestHash, type PlaceOrderArgs } from '../src/commands.ts';
import type { OrderEntity, OrderItemEntity } from '../src/entities.ts';
import { SagaRejection, initialOrderSagaState } from '../src/saga.ts';
import { orderSettings } from '../src/settings.ts';
import { sagaState } from '../src/store.ts';

const ADDRESS = { name: 'Ada Lovelace', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' };
const INPUT: PlaceOrderArgs = {
  idempotencyKey: 'checkout-1',
  items: [
    { sku: 'TEE-M', quantity: 1 },
    { sku: 'MUG-BLUE', quantity: 2 },
  ],
  shippingAddress: ADDRESS,
  paymentMethod: 'tok_visa',
};

function field(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return (error as { extensions?: Record<string, unknown> }).extensions?.field;
  }
  assert.fail('expected an error');
}

/** The order settings as the platform parses them at start-up. */
const loadOrderSettings = (env: NodeJS.ProcessEnv) => parseSettings(orderSettings, env);

describe('orderSettings', () => {
  const DEFAULTS = { deadlineMs: 600_000, sweepIntervalMs: 1_000, admissionMaxLagMs: 2_000, admissionProbeMs: 200, admissionLagRank: 5 };

  test('defaults to a 10-minute deadline (a safety net, ADR 0012) swept every second, and admission closing at 2 s of saga lag', () => {
    assert.deepEqual(loadOrderSettings({}), DEFAULTS);
    assert.deepEqual(loadOrderSettings({ ORDER_DEADLINE_MS: '', ORDER_SWEEP_INTERVAL_MS: ' ', ORDER_ADMISSION_MAX_LAG_MS: '' }), DEFAULTS);
  });

  test('reads every setting from the environment; 0 turns admission control off', () => {
    assert.deepEqual(
      loadOrderSettings({
        ORDER_DEADLINE_MS: '500',
        ORDER_SWEEP_INTERVAL_MS: '100',
        ORDER_ADMISSION_MAX_LAG_MS: '0',
        ORDER_ADMISSION_PROBE_MS: '50',
        ORDER_ADMISSION_LAG_RANK: '1',
      }),
      { deadlineMs: 500, sweepIntervalMs: 100, admissionMaxLagMs: 0, admissionProbeMs: 50, admissionLagRank: 1 },
    );
  });

  test('refuses values that are not integers in range', () => {
    for (const env of [
      { ORDER_DEADLINE_MS: 'soon' },
      { ORDER_DEADLINE_MS: '0' },
      { ORDER_DEADLINE_MS: '1.5' },
      { ORDER_DEADLINE_MS: String(8 * 24 * 3_600_000) },
      { ORDER_SWEEP_INTERVAL_MS: '-1' },
      { ORDER_SWEEP_INTERVAL_MS: '5' },
      { ORDER_ADMISSION_MAX_LAG_MS: '-1' },
      { ORDER_ADMISSION_MAX_LAG_MS: 'fast' },
      { ORDER_ADMISSION_PROBE_MS: '5' },
      { ORDER_ADMISSION_PROBE_MS: '60001' },
      { ORDER_ADMISSION_LAG_RANK: '0' },
      { ORDER_ADMISSION_LAG_RANK: '1001' },
    ]) {
      const [variable] = Object.keys(env);
      assert.throws(
        () => loadOrderSettings(env),
        (error: unknown) => error instanceof ConfigError && error.message.startsWith(`${variable} must be an integer from`),
        JSON.stringify(env),
      );
    }
    assert.throws(() => loadOrderSettings({ ORDER_DEADLINE_MS: 'abc' }), {
      name: 'ConfigError',
      message: 'ORDER_DEADLINE_MS must be an integer from 100 to 604800000, got "abc"',
    });
  });
});

describe('checkPlaceOrderInput', () => {
  test('trims strings and turns a blank line2 into null', () => {
    const placement = checkPlaceOrderInput({
      ...INPUT,
      paymentMethod: ' tok_visa ',
      shippingAddress: { ...ADDRESS, name: ' Ada Lovelace ', line2: '   ' },
    });
    assert.equal(placement.paymentMethod, 'tok_visa');
    assert.deepEqual(placement.shippingAddress, {
      name: 'Ada Lovelace',
      line1: 'Hauptstraße 1',
      line2: null,
      city: 'Berlin',
      postalCode: '10115',
      country: 'DE',
    });
    assert.deepEqual(placement.items, INPUT.items);
  });

  test('names the field at fault, as a path from the input argument', () => {
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, items: [] })),
      'input.items',
    );
    assert.equal(
      field(() =>
        checkPlaceOrderInput({
          ...INPUT,
          items: [
            { sku: 'A', quantity: 1 },
            { sku: 'B', quantity: 0 },
          ],
        }),
      ),
      'input.items[1].quantity',
    );
    assert.equal(
      field(() =>
        checkPlaceOrderInput({
          ...INPUT,
          items: [
            { sku: 'A', quantity: 1 },
            { sku: 'A', quantity: 1 },
          ],
        }),
      ),
      'input.items[1].sku',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, items: [{ sku: 'a b', quantity: 1 }] })),
      'input.items[0].sku',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, idempotencyKey: '   ' })),
      'input.idempotencyKey',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, shippingAddress: { ...ADDRESS, country: 'DEU' } })),
      'input.shippingAddress.country',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, shippingAddress: { ...ADDRESS, line1: 'x'.repeat(201) } })),
      'input.shippingAddress.line1',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, paymentMethod: '' })),
      'input.paymentMethod',
    );
  });

  test('ships to a full address or a saved one by id: exactly one of them', () => {
    const savedId = '01900000-0000-7000-8000-0000000000AB';
    assert.deepEqual(checkPlaceOrderInput({ ...INPUT, shippingAddress: null, shippingAddressId: savedId }).shippingAddress, {
      savedAddressId: savedId.toLowerCase(),
    });
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, shippingAddressId: savedId })),
      'input.shippingAddressId',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, shippingAddress: null })),
      'input.shippingAddress',
    );
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, shippingAddress: null, shippingAddressId: 'home' })),
      'input.shippingAddressId',
    );
    const viaId = (id: string) => requestHash(checkPlaceOrderInput({ ...INPUT, shippingAddress: null, shippingAddressId: id }));
    assert.equal(viaId(savedId), viaId(savedId.toLowerCase()), 'the id in any case is the same request');
    assert.notEqual(viaId(savedId), requestHash(checkPlaceOrderInput(INPUT)), 'a saved address is another request than a typed one');
  });

  test('counts characters, not UTF-16 units', () => {
    assert.doesNotThrow(() => checkPlaceOrderInput({ ...INPUT, idempotencyKey: '🛒'.repeat(100) }));
    assert.equal(
      field(() => checkPlaceOrderInput({ ...INPUT, idempotencyKey: '🛒'.repeat(101) })),
      'input.idempotencyKey',
    );
  });
});

describe('requestHash', () => {
  const hash = (input: PlaceOrderArgs) => requestHash(checkPlaceOrderInput(input));

  test('ignores line order, key order and surrounding whitespace', () => {
    const base = hash(INPUT);
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(hash({ ...INPUT, items: [...INPUT.items].reverse() }), base);
    assert.equal(
      hash({
        ...INPUT,
        paymentMethod: 'tok_visa ',
        shippingAddress: { country: 'DE', postalCode: '10115', city: 'Berlin', line1: 'Hauptstraße 1', name: 'Ada Lovelace', line2: null },
      }),
      base,
    );
    assert.equal(hash({ ...INPUT, idempotencyKey: 'another key' }), base, 'the key is not part of the request');
  });

  test('changes with any line, the address or the payment method', () => {
    const base = hash(INPUT);
    for (const other of [
      {
        ...INPUT,
        items: [
          { sku: 'TEE-M', quantity: 2 },
          { sku: 'MUG-BLUE', quantity: 2 },
        ],
      },
      { ...INPUT, items: [{ sku: 'TEE-M', quantity: 1 }] },
      { ...INPUT, shippingAddress: { ...ADDRESS, line2: 'c/o Babbage' } },
      { ...INPUT, shippingAddress: { ...ADDRESS, postalCode: '10117' } },
      { ...INPUT, paymentMethod: 'tok_decline' },
    ]) {
      assert.notEqual(hash(other), base, JSON.stringify(other));
    }
  });

  test('canonicalJson sorts keys at every level', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }], e: undefined }), '{"a":[{"c":"x","d":null}],"b":1}');
  });
});

describe('rejectionError', () => {
  test('keeps code, message and extensions, and puts the field under its argument', () => {
    const error = rejectionError(new SagaRejection('BAD_USER_INPUT', 'too much', { field: 'items' }), 'input.');
    assert.equal(error.message, 'too much');
    assert.deepEqual(error.extensions, { field: 'input.items', code: 'BAD_USER_INPUT' });
    const notCancellable = rejectionError(new SagaRejection('ORDER_NOT_CANCELLABLE', 'shipped', { id: 'x', status: 'SHIPPED' }));
    assert.deepEqual(notCancellable.extensions, { id: 'x', status: 'SHIPPED', code: 'ORDER_NOT_CANCELLABLE' });
  });
});

describe('sagaState', () => {
  const order = {
    id: '01936f3a-5b2c-7d4e-9f10-2a3b4c5d6e7f',
    customerId: 'alice',
    status: 'AWAITING_PAYMENT',
    currency: 'EUR',
    totalAmount: 4998,
    paymentMethod: 'tok_visa',
    deadlineAt: new Date('2026-11-22T10:30:00.000Z'),
  } as OrderEntity;
  const items = [
    { order: order.id, sku: 'MUG-BLUE', quantity: 2, unitPriceAmount: 1299 },
    { order: order.id, sku: 'TEE-M', quantity: 1, unitPriceAmount: 2400 },
  ] as OrderItemEntity[];

  test('is the initial state without an order', () => {
    assert.equal(sagaState(null, []), initialOrderSagaState);
  });

  test('maps an order and its lines', () => {
    assert.deepEqual(sagaState(order, items), {
      status: 'AWAITING_PAYMENT',
      orderId: order.id,
      customerId: 'alice',
      items: [
        { sku: 'MUG-BLUE', quantity: 2, unitPrice: { amount: 1299, currency: 'EUR' } },
        { sku: 'TEE-M', quantity: 1, unitPrice: { amount: 2400, currency: 'EUR' } },
      ],
      total: { amount: 4998, currency: 'EUR' },
      paymentMethod: 'tok_visa',
      deadlineAt: '2026-11-22T10:30:00.000Z',
      paymentAuthorized: false,
    });
    assert.equal((sagaState({ ...order, status: 'CONFIRMED' } as OrderEntity, items) as { paymentAuthorized: boolean }).paymentAuthorized, true);
  });
});
