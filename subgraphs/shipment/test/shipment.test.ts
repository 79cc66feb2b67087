import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { Shipment, type ShipmentStatus } from '../src/entities.ts';

const SHIPMENT_FIELDS = 'id status carrier trackingNumber dispatchedAt deliveredAt createdAt updatedAt order { id }';
const ORDER_ENTITIES = `query ($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Order { id shipment { ${SHIPMENT_FIELDS} } } }
}`;
const SHIPMENT_ENTITIES = `query ($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Shipment { ${SHIPMENT_FIELDS} } }
}`;

const refs = (typename: string, ids: readonly string[]) => ({ representations: ids.map((id) => ({ __typename: typename, id })) });

describe('shipment subgraph', () => {
  let stack: TestStack;
  let url: string;
  let alice: string;
  let bob: string;
  let admin: string;
  const orders = { pending: randomUUID(), dispatched: randomUUID(), delivered: randomUUID(), bobs: randomUUID(), unconfirmed: randomUUID() };
  const shipments: Record<string, string> = {};
  const dispatchedAt = new Date('2026-11-21T09:00:00.000Z');
  const deliveredAt = new Date('2026-11-23T15:30:00.000Z');

  async function insertShipment(orderId: string, customerId: string, status: ShipmentStatus): Promise<string> {
    const em = stack.services.shipment!.runtime.db.fork();
    const id = randomUUID();
    const sent = status === 'DISPATCHED' || status === 'DELIVERED';
    em.create(Shipment, {
      id,
      orderId,
      customerId,
      status,
      carrier: sent ? 'DHL' : null,
      trackingNumber: sent ? `JD${orderId.slice(0, 8)}` : null,
      dispatchedAt: sent ? dispatchedAt : null,
      deliveredAt: status === 'DELIVERED' ? deliveredAt : null,
    });
    await em.flush();
    return id;
  }

  before(async () => {
    stack = await startStack({ services: ['order', 'payment', 'shipment'], countQueries: true });
    url = stack.services.shipment!.url;
    // The outbox relay polls on the same pool; the reads under test must be the only queries counted.
    await stack.services.shipment!.relay?.stop();
    [alice, bob, admin] = await Promise.all([stack.token('alice', ['customer']), stack.token('bob', ['customer']), stack.token('root', ['admin'])]);
    shipments.pending = await insertShipment(orders.pending, 'alice', 'PENDING');
    shipments.dispatched = await insertShipment(orders.dispatched, 'alice', 'DISPATCHED');
    shipments.delivered = await insertShipment(orders.delivered, 'alice', 'DELIVERED');
    shipments.bobs = await insertShipment(orders.bobs, 'bob', 'PENDING');
  });

  after(async () => {
    await stack?.close();
  });

  test('_entities resolves the shipments of three orders in one SQL query', async () => {
    const db = stack.services.shipment!.runtime.db;
    const before = db.queryCount;
    const result = await stack.graphql(ORDER_ENTITIES, { url, token: alice, variables: refs('Order', [orders.pending, orders.dispatched, orders.delivered]) });
    assert.equal(db.queryCount - before, 1);
    assert.equal(result.errors, undefined);
    const [pending, dispatched, delivered] = result.data._entities.map((o: any) => o.shipment);
    assert.equal(pending.id, shipments.pending);
    assert.equal(pending.status, 'PENDING');
    assert.equal(pending.carrier, null);
    assert.equal(pending.trackingNumber, null);
    assert.equal(pending.dispatchedAt, null);
    assert.deepEqual(pending.order, { id: orders.pending });
    assert.equal(dispatched.id, shipments.dispatched);
    assert.equal(dispatched.status, 'DISPATCHED');
    assert.equal(dispatched.carrier, 'DHL');
    assert.equal(dispatched.trackingNumber, `JD${orders.dispatched.slice(0, 8)}`);
    assert.equal(dispatched.dispatchedAt, dispatchedAt.toISOString());
    assert.equal(dispatched.deliveredAt, null);
    assert.equal(delivered.id, shipments.delivered);
    assert.equal(delivered.deliveredAt, deliveredAt.toISOString());
    assert.deepEqual(delivered.order, { id: orders.delivered });
  });

  test('Shipment references resolve by id in one SQL query, each pointing at its order', async () => {
    const db = stack.services.shipment!.runtime.db;
    const before = db.queryCount;
    const unknown = randomUUID();
    const result = await stack.graphql(SHIPMENT_ENTITIES, {
      url,
      token: alice,
      variables: refs('Shipment', [shipments.delivered, unknown, shipments.pending]),
    });
    assert.equal(db.queryCount - before, 1);
    assert.equal(result.errors, undefined);
    assert.equal(result.data._entities[0].id, shipments.delivered);
    assert.deepEqual(result.data._entities[0].order, { id: orders.delivered });
    assert.equal(result.data._entities[1], null);
    assert.equal(result.data._entities[2].status, 'PENDING');
  });

  test('an order without a shipment has a null shipment', async () => {
    const result = await stack.graphql(ORDER_ENTITIES, { url, token: alice, variables: refs('Order', [orders.unconfirmed, 'not-a-uuid']) });
    assert.equal(result.errors, undefined);
    assert.deepEqual(result.data._entities, [
      { id: orders.unconfirmed, shipment: null },
      { id: 'not-a-uuid', shipment: null },
    ]);
  });

  test("another customer's shipment is FORBIDDEN, by order and by id", async () => {
    const byOrder = await stack.graphql(ORDER_ENTITIES, { url, token: bob, variables: refs('Order', [orders.bobs, orders.dispatched]) });
    assert.equal(byOrder.data._entities[0].shipment.id, shipments.bobs);
    assert.equal(byOrder.data._entities[1].shipment, null);
    assert.equal(byOrder.errors?.length, 1);
    assert.equal(byOrder.errors[0].extensions?.code, 'FORBIDDEN');
    assert.deepEqual(byOrder.errors[0].path, ['_entities', 1, 'shipment']);

    const byId = await stack.graphql(SHIPMENT_ENTITIES, { url, token: bob, variables: refs('Shipment', [shipments.dispatched]) });
    assert.equal(byId.data._entities[0], null);
    assert.equal(byId.errors?.[0].extensions?.code, 'FORBIDDEN');
  });

  test('an admin sees every shipment', async () => {
    const result = await stack.graphql(ORDER_ENTITIES, { url, token: admin, variables: refs('Order', [orders.bobs, orders.dispatched]) });
    assert.equal(result.errors, undefined);
    assert.deepEqual(
      result.data._entities.map((o: any) => o.shipment.id),
      [shipments.bobs, shipments.dispatched],
    );
  });

  test('without a token a shipment is UNAUTHENTICATED', async () => {
    const result = await stack.graphql(ORDER_ENTITIES, { url, variables: refs('Order', [orders.pending]) });
    assert.equal(result.errors?.[0].extensions?.code, 'UNAUTHENTICATED');
  });

  test('the migration created the shipment table with its constraints', async () => {
    const em = stack.services.shipment!.runtime.db.fork();
    const columns = await em
      .getConnection()
      .execute<{ column_name: string }[]>(
        `select column_name from information_schema.columns where table_schema = 'public' and table_name = 'shipment' order by ordinal_position`,
      );
    assert.deepEqual(
      columns.map((c) => c.column_name),
      ['id', 'order_id', 'customer_id', 'status', 'carrier', 'tracking_number', 'dispatched_at', 'delivered_at', 'version', 'created_at', 'updated_at'],
    );
    await assert.rejects(insertShipment(orders.pending, 'alice', 'PENDING'), /shipment_order_id_unique/);
    // A dispatched shipment without a carrier breaks its check constraint.
    await assert.rejects(
      em
        .getConnection()
        .execute(`insert into shipment (id, order_id, customer_id, status) values ('${randomUUID()}', '${randomUUID()}', 'alice', 'DISPATCHED')`),
      /shipment_dispatch_details/,
    );
  });
});
