/**
 * Customers and orders across subgraphs, through the gateway: `me { orders }` (customer, then order),
 * `Order.customer` (order, then customer), and who may read whose. Real services, PostgreSQL, Redis
 * and Kafka.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestStack } from '../support/stack.ts';
import { randomUUID } from 'node:crypto';
import { newEvent } from '@swiftcart/platform';
import { SAGA_SERVICES, type SagaSystem, PLACE_ORDER, drainSystem, orderInput, placeOrder, startSeededSaga, waitFor } from '../support/saga.ts';

const ME_WITH_ORDERS = `query { me { id name orders(first: 5) { totalCount edges { node { id status customer { id name } } } } } }`;
const ORDER_CUSTOMER = `query ($id: ID!) { order(id: $id) { id customer { id name orders(first: 1) { totalCount } } } }`;
const CUSTOMER_ORDERS = `query ($id: ID!) { customer(id: $id) { id orders(first: 10) { totalCount edges { node { id } } } } }`;
const UPDATE = `mutation ($input: UpdateProfileInput!) { updateMyProfile(input: $input) { id } }`;
const ADD = `mutation ($input: AddressInput!) { addAddress(input: $input) { addresses { id city isDefault } } }`;
const UPDATE_ADDRESS = `mutation ($id: ID!, $input: AddressInput!) { updateAddress(id: $id, input: $input) { id } }`;
const ORDER_ADDRESS = `query ($id: ID!) { order(id: $id) { shippingAddress { name line1 line2 city postalCode country } } }`;
const HOME = { name: 'Alice', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' };
const ENTITIES = `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Customer { id orders { totalCount } } } }`;

describe('customers and their orders through the gateway', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;
  let alice: string;
  let bob: string;
  const placed: string[] = [];

  before(async () => {
    ({ stack, system, admin } = await startSeededSaga([{ sku: 'CUST-ORD-1', onHand: 10 }], {}, [...SAGA_SERVICES, 'customer']));
    [alice, bob] = await Promise.all([stack.token('orders-alice', ['customer']), stack.token('orders-bob', ['customer'])]);
    const named = await stack.graphql(UPDATE, { token: alice, variables: { input: { name: 'Alice' } } });
    assert.equal(named.errors, undefined, JSON.stringify(named.errors));
    for (let i = 0; i < 2; i++) placed.push((await placeOrder(system, alice, [{ sku: 'CUST-ORD-1', quantity: 1 }], 'tok_visa')).id);
    await placeOrder(system, bob, [{ sku: 'CUST-ORD-1', quantity: 1 }], 'tok_visa');
  });
  after(() => stack?.close());

  it("me { orders } lists the caller's orders newest first, each with its customer from the customer subgraph", async () => {
    const result = await stack.graphql(ME_WITH_ORDERS, { token: alice });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    const me = result.data.me;
    assert.equal(me.name, 'Alice');
    assert.equal(me.orders.totalCount, 2);
    assert.deepEqual(
      me.orders.edges.map((e: any) => e.node.id),
      [...placed].reverse(),
    );
    for (const edge of me.orders.edges) assert.deepEqual(edge.node.customer, { id: 'orders-alice', name: 'Alice' });
  });

  it('Order.customer resolves through the customer subgraph, for the customer and for an admin', async () => {
    const own = await stack.graphql(ORDER_CUSTOMER, { token: alice, variables: { id: placed[0] } });
    assert.equal(own.errors, undefined, JSON.stringify(own.errors));
    assert.deepEqual(own.data.order.customer, { id: 'orders-alice', name: 'Alice', orders: { totalCount: 2 } });
    const asAdmin = await stack.graphql(CUSTOMER_ORDERS, { token: admin, variables: { id: 'orders-alice' } });
    assert.equal(asAdmin.errors, undefined, JSON.stringify(asAdmin.errors));
    assert.equal(asAdmin.data.customer.orders.totalCount, 2);
  });

  it("another customer's orders are FORBIDDEN, at the gateway and at the order subgraph", async () => {
    const viaOrder = await stack.graphql(ORDER_CUSTOMER, { token: bob, variables: { id: placed[0] } });
    assert.equal(viaOrder.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const direct = await stack.graphql(ENTITIES, {
      url: stack.services.order!.url,
      token: bob,
      variables: { representations: [{ __typename: 'Customer', id: 'orders-alice' }] },
    });
    assert.equal(direct.errors?.[0]?.extensions?.code, 'FORBIDDEN');
    const anonymous = await stack.graphql(ENTITIES, {
      url: stack.services.order!.url,
      token: null,
      variables: { representations: [{ __typename: 'Customer', id: 'orders-alice' }] },
    });
    assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  });

  it("placeOrder ships to a saved address by id, keeps it as it was, and refuses an address that is not the caller's", async () => {
    const added = await stack.graphql(ADD, { token: alice, variables: { input: HOME } });
    assert.equal(added.errors, undefined, JSON.stringify(added.errors));
    const homeId = added.data.addAddress.addresses[0].id;
    const place = (token: string, key: string, id: string) =>
      stack.graphql(PLACE_ORDER, {
        token,
        variables: { input: { ...orderInput([{ sku: 'CUST-ORD-1', quantity: 1 }], 'tok_visa', key), shippingAddress: null, shippingAddressId: id } },
      });
    // The order service learns of the address from CustomerUpdated: until then the id is unknown there.
    const placedResult = await waitFor(
      async () => {
        const result = await place(alice, 'saved-address-1', homeId);
        return result.errors?.[0]?.extensions?.field === 'input.shippingAddressId' ? undefined : result;
      },
      "the order service's copy of the new address",
      20_000,
    );
    assert.equal(placedResult.errors, undefined, JSON.stringify(placedResult.errors));
    const orderId = placedResult.data.placeOrder.id;
    const expected = { ...HOME, line2: null };
    const read = async () => (await stack.graphql(ORDER_ADDRESS, { token: alice, variables: { id: orderId } })).data.order.shippingAddress;
    assert.deepEqual(await read(), expected);
    const again = await place(alice, 'saved-address-1', homeId);
    assert.equal(again.data?.placeOrder?.id, orderId, 'the same key and input is the same order');

    const changed = await stack.graphql(UPDATE_ADDRESS, { token: alice, variables: { id: homeId, input: { ...HOME, line1: 'Neue Straße 9' } } });
    assert.equal(changed.errors, undefined, JSON.stringify(changed.errors));
    assert.deepEqual(await read(), expected, 'the order keeps the address as it was when placed');

    const foreign = await place(bob, 'saved-address-2', homeId);
    assert.equal(foreign.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.equal(foreign.errors[0].extensions.field, 'input.shippingAddressId');
    const both = await stack.graphql(PLACE_ORDER, {
      token: alice,
      variables: { input: { ...orderInput([{ sku: 'CUST-ORD-1', quantity: 1 }], 'tok_visa', 'saved-address-3'), shippingAddressId: homeId } },
    });
    assert.equal(both.errors?.[0]?.extensions?.field, 'input.shippingAddressId', 'an address and an id at once is refused');

    // A late, older CustomerUpdated (version 1) naming another address changes nothing in the copy.
    const staleAddressId = randomUUID();
    const stale = newEvent('CustomerUpdated', {
      customerId: 'orders-alice',
      email: null,
      name: null,
      phone: null,
      notificationPreferences: { email: true, sms: false },
      addresses: [{ id: staleAddressId, ...HOME, line2: null, isDefault: true }],
      version: 1,
    });
    await system.kafka.publish('customer.events.v1', [{ key: 'orders-alice', value: JSON.stringify(stale), headers: { id: stale.id, type: stale.type } }]);
    await drainSystem(system);
    const handled = await system.em('order').execute('select 1 from inbox where consumer = ? and event_id = ?', ['order.customers', stale.id]);
    assert.equal(handled.length, 1, 'the order service took the stale event (not dead-lettered)');
    const viaStale = await place(alice, 'saved-address-4', staleAddressId);
    assert.equal(viaStale.errors?.[0]?.extensions?.field, 'input.shippingAddressId', 'the stale address never reached the copy');
    const viaCurrent = await place(alice, 'saved-address-5', homeId);
    assert.equal(viaCurrent.errors, undefined, JSON.stringify(viaCurrent.errors));
  });
});
