/**
 * Roles (issue 9, item 10): placing, cancelling and reading orders — and an order's payment and
 * shipment — need the `customer` or `admin` role. A valid token whose `roles` is empty gets
 * FORBIDDEN before anything is read or stored, over HTTP and over graphql-ws; no token at all stays
 * UNAUTHENTICATED. Real order, payment and shipment subgraphs, called directly (with the gateway's
 * credential, as the gateway would).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { channelName } from '@swiftcart/platform';
import { startStack, type GraphQLResult, type TestStack } from '../../../test/support/stack.ts';
import { connectLive, type LiveClient } from '../../../test/support/subscriptions.ts';
import { CANCEL_ORDER, PLACE_ORDER, READ_ORDER, em, orderInput, seedCatalogue } from './support.ts';

const MY_ORDERS = `query { myOrders(first: 10) { edges { node { id customerId } } } }`;
const FOLLOW = `subscription ($id: ID!) { orderUpdated(id: $id) { id status version } }`;
const PAYMENT = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id payment { id status } } } }`;
const SHIPMENT = `query ($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id shipment { id status } } } }`;

/** The one error of a refused operation: its code, and no data of the order. */
function refused(result: Pick<GraphQLResult, 'data' | 'errors'>, code: string, what: string): void {
  assert.equal(result.errors?.length, 1, `${what}: ${JSON.stringify(result.errors)}`);
  assert.equal(result.errors![0].extensions?.code, code, `${what}: ${JSON.stringify(result.errors)}`);
  assert.doesNotMatch(JSON.stringify(result.data ?? null), /ROLE-MUG|tok_visa|Hauptstraße/, `${what}: nothing of the order`);
}

describe('order roles', () => {
  let stack: TestStack;
  let orderUrl: string;
  /** A valid token of "nobody" with `roles: []`. */
  let noRoles: string;
  let customer: string;
  let admin: string;
  const clients: LiveClient[] = [];

  before(async () => {
    stack = await startStack({ services: ['order', 'payment', 'shipment'], env: { ORDER_SWEEP_INTERVAL_MS: '3600000' } });
    orderUrl = stack.services.order!.url;
    [noRoles, customer, admin] = await Promise.all([stack.token('nobody', []), stack.token('carla', ['customer']), stack.token('root', ['admin'])]);
    await seedCatalogue(stack, [{ sku: 'ROLE-MUG', amount: 990 }]);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await stack?.close();
  });

  const place = async (token: string): Promise<GraphQLResult> =>
    stack.graphql(PLACE_ORDER, { url: orderUrl, token, variables: { input: orderInput([{ sku: 'ROLE-MUG', quantity: 1 }]) } });

  async function placed(token: string): Promise<string> {
    const result = await place(token);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data.placeOrder.id as string;
  }

  const follow = (token: string | null, id: string) => {
    const client = connectLive(stack.services.order!.wsUrl, { token, headers: stack.subgraphHeaders });
    clients.push(client);
    return client.subscribe(FOLLOW, { id });
  };

  const ordersOf = async (customerId: string): Promise<number> => {
    const [row] = await em(stack).execute<{ n: string }[]>('select count(*) as n from orders where customer_id = ?', [customerId]);
    return Number(row.n);
  };

  test('a token without roles may not place an order, and nothing is stored', async () => {
    const result = await place(noRoles);
    refused(result, 'FORBIDDEN', 'placeOrder');
    assert.match(result.errors![0].message, /requires one of the roles customer, admin/);
    assert.deepEqual(result.errors![0].extensions?.requiredRoles, ['customer', 'admin']);
    assert.equal(await ordersOf('nobody'), 0);
    // The role is checked before the input: an invalid input is refused the same way.
    const invalid = await stack.graphql(PLACE_ORDER, { url: orderUrl, token: noRoles, variables: { input: orderInput([{ sku: 'ROLE-MUG', quantity: 0 }]) } });
    refused(invalid, 'FORBIDDEN', 'placeOrder with invalid input');
  });

  test('a token without roles may not cancel, read, list or follow orders — its own included', async () => {
    const others = await placed(customer);
    // An order of "nobody" from before it lost its roles: being its customer is not enough.
    const own = await placed(await stack.token('nobody', ['customer']));
    for (const id of [others, own]) {
      refused(await stack.graphql(CANCEL_ORDER, { url: orderUrl, token: noRoles, variables: { id } }), 'FORBIDDEN', 'cancelOrder');
      refused(await stack.graphql(READ_ORDER, { url: orderUrl, token: noRoles, variables: { id } }), 'FORBIDDEN', 'order');
      const probe = follow(noRoles, id);
      const first = await probe.next();
      refused(first, 'FORBIDDEN', 'orderUpdated');
      await probe.end();
      assert.equal(probe.results.length, 1);
      assert.equal(stack.services.order!.runtime.live.listenerCount(channelName(stack.config, `order:${id}`)), 0, 'no Redis channel held');
    }
    refused(await stack.graphql(MY_ORDERS, { url: orderUrl, token: noRoles }), 'FORBIDDEN', 'myOrders');
    const [row] = await em(stack).execute<{ status: string }[]>('select status from orders where id = ?', [own]);
    assert.equal(row.status, 'PENDING', 'the cancel was refused');
  });

  test("a token without roles may not read an order's payment or shipment", async () => {
    const representations = [{ __typename: 'Order', id: randomUUID() }];
    for (const [service, query] of [
      ['payment', PAYMENT],
      ['shipment', SHIPMENT],
    ] as const) {
      const result = await stack.graphql(query, { url: stack.services[service]!.url, token: noRoles, variables: { r: representations } });
      refused(result, 'FORBIDDEN', `Order.${service}`);
      // The customer role gets past the role check (there is no such payment or shipment).
      const allowed = await stack.graphql(query, { url: stack.services[service]!.url, token: customer, variables: { r: representations } });
      assert.equal(allowed.errors, undefined, JSON.stringify(allowed.errors));
      assert.equal(allowed.data._entities[0][service], null);
    }
  });

  test('no token at all is still UNAUTHENTICATED', async () => {
    refused(await place(''), 'UNAUTHENTICATED', 'placeOrder');
    refused(await stack.graphql(MY_ORDERS, { url: orderUrl }), 'UNAUTHENTICATED', 'myOrders');
  });

  test('the customer role places, reads, lists, follows and cancels its own order', async () => {
    const id = await placed(customer);
    const read = await stack.graphql(READ_ORDER, { url: orderUrl, token: customer, variables: { id } });
    assert.equal(read.errors, undefined, JSON.stringify(read.errors));
    assert.equal(read.data.order.customerId, 'carla');
    const mine = await stack.graphql(MY_ORDERS, { url: orderUrl, token: customer });
    assert.ok(mine.data.myOrders.edges.some((e: { node: { id: string } }) => e.node.id === id));
    const probe = follow(customer, id);
    assert.deepEqual(await probe.nextData(), { orderUpdated: { id, status: 'PENDING', version: 1 } });
    const cancelled = await stack.graphql(CANCEL_ORDER, { url: orderUrl, token: customer, variables: { id } });
    assert.equal(cancelled.errors, undefined, JSON.stringify(cancelled.errors));
    assert.equal(cancelled.data.cancelOrder.status, 'CANCELLED');
    assert.equal((await probe.nextData()).orderUpdated.status, 'CANCELLED');
    probe.dispose();
  });

  test("the admin role places its own orders, and reads, follows and cancels a customer's", async () => {
    const own = await placed(admin);
    assert.equal((await stack.graphql(READ_ORDER, { url: orderUrl, token: admin, variables: { id: own } })).data.order.customerId, 'root');
    const theirs = await placed(customer);
    const read = await stack.graphql(READ_ORDER, { url: orderUrl, token: admin, variables: { id: theirs } });
    assert.equal(read.errors, undefined, JSON.stringify(read.errors));
    assert.equal(read.data.order.customerId, 'carla');
    const probe = follow(admin, theirs);
    assert.equal((await probe.nextData()).orderUpdated.id, theirs);
    probe.dispose();
    const cancelled = await stack.graphql(CANCEL_ORDER, { url: orderUrl, token: admin, variables: { id: theirs, reason: 'fraud check' } });
    assert.equal(cancelled.errors, undefined, JSON.stringify(cancelled.errors));
    assert.equal(cancelled.data.cancelOrder.status, 'CANCELLED');
  });
});
