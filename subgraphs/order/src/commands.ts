/**
 * The order mutations: `placeOrder` and `cancelOrder`. Each checks its input, asks the saga
 * (`react`), and writes the order, its timeline entry and its events in ONE transaction, so either
 * all of it commits or nothing does. The saga's own rules (who may cancel, from which status, what
 * each step emits) stay in saga.ts; this module only turns GraphQL input into saga commands and
 * saga rejections into GraphQL errors.
 */
import { createHash } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { GraphQLError } from 'graphql';
import {
  ErrorCode,
  ORDER_ROLES,
  SKU_PATTERN,
  apiError,
  badInput,
  checkIdempotencyKey,
  checkPostalAddress,
  checkText,
  inTransaction,
  isUuid,
  markOrder,
  requireAnyRole,
  uuidv7,
  type EntityManager,
  type EventSchemaRegistry,
  type Logger,
  type PostalAddressInput,
  type Viewer,
} from '@swiftcart/platform';
import { CataloguePrice, Order, type OrderEntity, type ShippingAddressRecord } from './entities.ts';
import { checkOrderId } from './orders.ts';
import {
  MAX_LINE_QUANTITY,
  MAX_ORDER_LINES,
  SagaRejection,
  initialOrderSagaState,
  react,
  type OrderLine,
  type OrderSagaInput,
  type OrderSagaState,
  type PlacedOrderSagaState,
  type SkuQuantity,
} from './saga.ts';
import type { OrderSettings } from './settings.ts';
import type { SagaAdmission } from './admission.ts';
import type { OrderAnnouncer } from './live.ts';
import { applyDecision, createPlacedOrder, loadSaga } from './store.ts';

/** What the mutations need besides the request's EntityManager. */
export interface CommandDeps {
  readonly settings: OrderSettings;
  readonly registry: EventSchemaRegistry;
  /** Announces each committed change to live subscribers. */
  readonly announcer: OrderAnnouncer;
  /** Where a failed after-commit step is reported. */
  readonly log: Logger;
  /** The clock (tests may pin it); defaults to `new Date()`. */
  readonly now?: () => Date;
  /** Refuses new orders while the saga lags (admission.ts); every order is admitted without it. */
  readonly admission?: Pick<SagaAdmission, 'admit'>;
}

// ---------------------------------------------------------------------------------------------
// Input

/** `PlaceOrderInput` as GraphQL hands it over. */
export interface PlaceOrderArgs {
  readonly idempotencyKey: string;
  readonly items: readonly { readonly sku: string; readonly quantity: number }[];
  readonly shippingAddress?: PostalAddressInput | null;
  readonly shippingAddressId?: string | null;
  readonly paymentMethod: string;
}

/** A checked placement: strings trimmed, an empty `line2` made null. */
export interface Placement {
  readonly idempotencyKey: string;
  /** In the client's order. */
  readonly items: readonly SkuQuantity[];
  /** The address to ship to: given in full, or the id of one of the customer's saved addresses. */
  readonly shippingAddress: ShippingAddressRecord | { readonly savedAddressId: string };
  readonly paymentMethod: string;
}

const MAX_PAYMENT_METHOD_LENGTH = 100;
/** Exactly one of `shippingAddress` and `shippingAddressId`, checked. */
function checkShipTo(input: PlaceOrderArgs): Placement['shippingAddress'] {
  if (input.shippingAddress != null && input.shippingAddressId != null) {
    throw badInput('Give "input.shippingAddress" or "input.shippingAddressId", not both', 'input.shippingAddressId');
  }
  if (input.shippingAddressId != null) {
    if (!isUuid(input.shippingAddressId)) throw badInput('"input.shippingAddressId" must be an address id (a UUID)', 'input.shippingAddressId');
    return { savedAddressId: input.shippingAddressId.toLowerCase() };
  }
  if (input.shippingAddress == null)
    throw badInput('Give "input.shippingAddress" or "input.shippingAddressId": where to ship the order', 'input.shippingAddress');
  return checkPostalAddress(input.shippingAddress, 'input.shippingAddress');
}

/**
 * The address to ship to: the one given, or a copy of the customer's saved address (from the
 * replica the customer events feed); BAD_USER_INPUT for an id that is not one of theirs.
 */
async function shippingAddressOf(em: EntityManager, customerId: string, placement: Placement): Promise<ShippingAddressRecord> {
  const shipTo = placement.shippingAddress;
  if (!('savedAddressId' in shipTo)) return shipTo;
  const [saved] = await em.execute<{ address: ShippingAddressRecord }[]>('select address from customer_address where id = ? and customer_id = ?', [
    shipTo.savedAddressId,
    customerId,
  ]);
  if (!saved) {
    throw badInput(
      '"input.shippingAddressId" is none of your saved addresses (one saved a moment ago may take a moment to reach the order service)',
      'input.shippingAddressId',
    );
  }
  return saved.address;
}

/**
 * Checks a PlaceOrderInput (BAD_USER_INPUT with `field`, the path from the `input` argument, for
 * the first problem): the idempotency key 1 to 100 characters; 1 to 100 lines, each a valid sku at
 * most once with a quantity from 1 to 1,000; the address lengths of the SDL; a payment method of 1
 * to 100 characters. Prices are not input: they come from the catalogue replica.
 */
export function checkPlaceOrderInput(input: PlaceOrderArgs): Placement {
  const key = input.idempotencyKey;
  checkIdempotencyKey(key);
  if (input.items.length < 1 || input.items.length > MAX_ORDER_LINES) {
    throw badInput(`"input.items" must hold 1 to ${MAX_ORDER_LINES} lines, got ${input.items.length}`, 'input.items');
  }
  const seen = new Set<string>();
  const items = input.items.map((item, i) => {
    const at = `input.items[${i}]`;
    if (!SKU_PATTERN.test(item.sku)) throw badInput(`"${at}.sku" must be 1 to 64 letters, digits, '.', '_' or '-'`, `${at}.sku`);
    if (seen.has(item.sku)) throw badInput(`"${at}.sku": each sku may appear once, "${item.sku}" is repeated`, `${at}.sku`);
    seen.add(item.sku);
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > MAX_LINE_QUANTITY) {
      throw badInput(`"${at}.quantity" must be an integer from 1 to ${MAX_LINE_QUANTITY}, got ${item.quantity}`, `${at}.quantity`);
    }
    return { sku: item.sku, quantity: item.quantity };
  });
  const shippingAddress = checkShipTo(input);
  const paymentMethod = checkText(input.paymentMethod, 'input.paymentMethod', 1, MAX_PAYMENT_METHOD_LENGTH);
  return { idempotencyKey: key, items, shippingAddress, paymentMethod };
}

/** JSON with object keys sorted at every level: equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * What makes two placements under one key the same request: sha256 (hex) of the canonical JSON of
 * the lines sorted by sku, the shipping address and the payment method (all as checked, so
 * whitespace around a value or a line order changes nothing).
 */
export function requestHash(placement: Placement): string {
  const items = [...placement.items].sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)).map(({ sku, quantity }) => ({ sku, quantity }));
  const canonical = canonicalJson({ items, shippingAddress: placement.shippingAddress, paymentMethod: placement.paymentMethod });
  return createHash('sha256').update(canonical).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Saga calls

/**
 * `react`, with a {@link SagaRejection} turned into its GraphQL error one to one. `fieldPrefix`
 * puts the rejection's `field` under the argument it came from (`items[0].quantity` →
 * `input.items[0].quantity`).
 */
function reactOrReject(state: OrderSagaState, input: OrderSagaInput, fieldPrefix = '') {
  try {
    return react(state, input);
  } catch (error) {
    if (error instanceof SagaRejection) throw rejectionError(error, fieldPrefix);
    throw error;
  }
}

/** `apiError(rejection.code, rejection.message, rejection.extensions)`, `field` prefixed. */
export function rejectionError(rejection: SagaRejection, fieldPrefix = ''): GraphQLError {
  const extensions: Record<string, unknown> = { ...rejection.extensions };
  if (typeof extensions.field === 'string' && fieldPrefix) extensions.field = `${fieldPrefix}${extensions.field}`;
  return apiError(rejection.code, rejection.message, extensions);
}

function unauthenticated(what: string): GraphQLError {
  return apiError(ErrorCode.Unauthenticated, `${what} requires a token`);
}

// ---------------------------------------------------------------------------------------------
// placeOrder

/** An earlier placement under the same key: the same request gets its order, another one an error. */
function replay(existing: Pick<OrderEntity, 'id' | 'requestHash'>, hash: string): string {
  if (existing.requestHash === hash) return existing.id;
  throw apiError(ErrorCode.IdempotencyKeyReused, 'This idempotency key was already used for a different order: use a new key for a new checkout', {
    field: 'input.idempotencyKey',
  });
}

function findByKey(em: EntityManager, customerId: string, idempotencyKey: string) {
  return em.findOne(Order, { customerId, idempotencyKey }, { fields: ['id', 'requestHash'] });
}

/**
 * Prices the lines from the catalogue replica, never from the client: BAD_USER_INPUT for an unknown
 * sku, PRODUCT_UNAVAILABLE for a discontinued one, BAD_USER_INPUT when the lines are priced in more
 * than one currency.
 */
async function priceLines(em: EntityManager, items: readonly SkuQuantity[]): Promise<OrderLine[]> {
  const prices = await em.find(CataloguePrice, { sku: { $in: items.map((item) => item.sku) } });
  const bySku = new Map(prices.map((price) => [price.sku, price]));
  let currency: string | undefined;
  return items.map((item, i) => {
    const field = `input.items[${i}].sku`;
    const price = bySku.get(item.sku);
    if (!price) throw badInput(`"${field}": unknown sku "${item.sku}"`, field);
    if (price.status !== 'ACTIVE') {
      throw apiError(ErrorCode.ProductUnavailable, `Product "${item.sku}" is discontinued and can no longer be ordered`, { field, sku: item.sku });
    }
    currency ??= price.currency;
    if (price.currency !== currency) {
      throw badInput(`"${field}": "${item.sku}" is priced in ${price.currency}, the order's other lines in ${currency}; an order has one currency`, field);
    }
    return { sku: item.sku, quantity: item.quantity, unitPrice: { amount: price.priceAmount, currency: price.currency } };
  });
}

/**
 * Places an order for the viewer and returns its id (the earlier order's id when this is a retry
 * of the same request under the same idempotency key). In one transaction: the idempotency look-up,
 * the prices from the replica, and the order, its lines, its first timeline entry and OrderPlaced
 * in the outbox. Two identical requests racing both miss the look-up; the unique key
 * (customer_id, idempotency_key) lets one insert, and the other re-reads and answers like a retry.
 */
export async function placeOrder(em: EntityManager, viewer: Viewer, input: PlaceOrderArgs, deps: CommandDeps): Promise<string> {
  const customerId = viewer.customerId;
  if (customerId === null) throw unauthenticated('Placing an order');
  // Before any input check: a token without the customer (or admin) role learns nothing more.
  requireAnyRole(viewer, ORDER_ROLES);
  const placement = checkPlaceOrderInput(input);
  // After the checks that a retry would fail again, before any I/O: a refusal costs nothing.
  deps.admission?.admit();
  const hash = requestHash(placement);
  try {
    return await inTransaction(em, deps.log, async (tx, afterCommit) => {
      const existing = await findByKey(tx, customerId, placement.idempotencyKey);
      if (existing) return replay(existing, hash);
      const items = await priceLines(tx, placement.items);
      const shippingAddress = await shippingAddressOf(tx, customerId, placement);
      const now = deps.now?.() ?? new Date();
      const orderId = uuidv7(now.getTime());
      markOrder(orderId);
      const result = reactOrReject(
        initialOrderSagaState,
        {
          type: 'PlaceOrder',
          data: {
            orderId,
            customerId,
            items,
            paymentMethod: placement.paymentMethod,
            deadlineAt: new Date(now.getTime() + deps.settings.deadlineMs).toISOString(),
            now: now.toISOString(),
          },
        },
        'input.',
      );
      const order = createPlacedOrder(
        tx,
        result.state as PlacedOrderSagaState,
        {
          idempotencyKey: placement.idempotencyKey,
          requestHash: hash,
          shippingAddress,
        },
        now,
      );
      await applyDecision(tx, order, result, { causationId: null, now, registry: deps.registry, announcer: deps.announcer, afterCommit });
      return orderId;
    });
  } catch (error) {
    if (!(error instanceof UniqueConstraintViolationException)) throw error;
    const existing = await findByKey(em.fork(), customerId, placement.idempotencyKey);
    if (!existing) throw error;
    return replay(existing, hash);
  }
}

// ---------------------------------------------------------------------------------------------
// cancelOrder

/**
 * Cancels an order for its customer or an admin and returns its id. Under a row lock: the saga
 * decides (NOT_FOUND, FORBIDDEN, ORDER_NOT_CANCELLABLE after SHIPPED, nothing for an order already
 * cancelled), then the status, the timeline entry and OrderCancelled commit together.
 */
export async function cancelOrder(
  em: EntityManager,
  viewer: Viewer,
  args: { readonly id: string; readonly reason?: string | null },
  deps: CommandDeps,
): Promise<string> {
  const customerId = viewer.customerId;
  if (customerId === null) throw unauthenticated('Cancelling an order');
  requireAnyRole(viewer, ORDER_ROLES);
  const orderId = checkOrderId(args.id);
  markOrder(orderId);
  await inTransaction(em, deps.log, async (tx, afterCommit) => {
    const saga = await loadSaga(tx, orderId);
    const now = deps.now?.() ?? new Date();
    const result = reactOrReject(saga.state, {
      type: 'CancelOrder',
      data: { orderId, by: { customerId, roles: viewer.roles }, reason: args.reason ?? null, now: now.toISOString() },
    });
    // react() rejected an unknown order (NOT_FOUND) above, so the order is there.
    await applyDecision(tx, saga.order!, result, { causationId: null, now, registry: deps.registry, announcer: deps.announcer, afterCommit });
  });
  return orderId;
}
