/**
 * The customer subgraph through the gateway: the supergraph routes `me`, the profile mutations and
 * the admin queries to it, errors keep their codes on the way out, and the demo customers are
 * seeded with profiles and addresses. Real PostgreSQL, Redis and Kafka.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack } from '../support/stack.ts';
import { SEED_CUSTOMERS } from '../../scripts/seed.ts';
import { seedCustomers } from '../../subgraphs/customer/src/customers.ts';
import { ErrorCode, SwiftCartError, createClient } from '../../clients/sdk/src/index.ts';

const ME = `query Me { me { id name email phone notificationPreferences { email sms } defaultAddress { line1 city country } addresses { city isDefault } } }`;
const UPDATE = `mutation Update($input: UpdateProfileInput!) { updateMyProfile(input: $input) { id name } }`;
const ADD = `mutation Add($input: AddressInput!) { addAddress(input: $input) { addresses { city } } }`;
const CUSTOMERS = `query Customers($search: String) { customers(search: $search) { totalCount edges { node { id name } } } }`;

describe('customers through the gateway', () => {
  let stack: TestStack;

  before(async () => {
    stack = await startStack({ services: ['customer'], gateway: true });
  });
  after(() => stack?.close());

  it('me, updateMyProfile and addAddress reach the customer subgraph; bad input keeps BAD_USER_INPUT and its field', async () => {
    const token = await stack.token('gateway-shopper', ['customer']);
    const first = await stack.graphql(ME, { token });
    assert.equal(first.errors, undefined, JSON.stringify(first.errors));
    assert.deepEqual(first.data.me, {
      id: 'gateway-shopper',
      name: null,
      email: null,
      phone: null,
      notificationPreferences: { email: true, sms: false },
      defaultAddress: null,
      addresses: [],
    });
    const updated = await stack.graphql(UPDATE, { token, variables: { input: { name: 'Dinah' } } });
    assert.deepEqual(updated.data, { updateMyProfile: { id: 'gateway-shopper', name: 'Dinah' } });
    const bad = await stack.graphql(ADD, { token, variables: { input: { name: 'Dinah', line1: 'x', city: 'Oxford', postalCode: 'OX1', country: 'XX' } } });
    assert.equal(bad.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.equal(bad.errors[0].extensions.field, 'input.country');
    const anonymous = await stack.graphql(ME);
    assert.equal(anonymous.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED');
  });

  it('the demo customers are seeded once, with profiles and a default address each, and an admin finds them', async () => {
    const em = stack.services.customer!.runtime.db.fork();
    assert.equal(await seedCustomers(em, SEED_CUSTOMERS), 3);
    assert.equal(await seedCustomers(em, SEED_CUSTOMERS), 0, 'seeding again changes nothing');
    const alice = await stack.graphql(ME, { token: await stack.token('alice', ['customer']) });
    assert.equal(alice.data.me.name, 'Alice Liddell');
    assert.deepEqual(alice.data.me.notificationPreferences, { email: true, sms: true });
    assert.deepEqual(alice.data.me.defaultAddress, { line1: 'Hauptstraße 1', city: 'Berlin', country: 'DE' });
    assert.deepEqual(
      alice.data.me.addresses.map((a: { city: string; isDefault: boolean }) => [a.city, a.isDefault]),
      [
        ['Berlin', true],
        ['Paris', false],
      ],
    );
    const admin = await stack.token('root', ['admin']);
    const found = await stack.graphql(CUSTOMERS, { token: admin, variables: { search: 'carol' } });
    assert.deepEqual(found.data.customers, { totalCount: 1, edges: [{ node: { id: 'carol', name: 'Carol Danvers' } }] });
    const forbidden = await stack.graphql(CUSTOMERS, { token: await stack.token('bob', ['customer']) });
    assert.equal(forbidden.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  });

  it('the SDK manages a profile and its addresses with typed methods, and types the errors', async () => {
    const client = createClient({ url: stack.gateway!.url, token: await stack.token('sdk-shopper', ['customer']) });
    try {
      const { me } = await client.me();
      assert.equal(me.id, 'sdk-shopper');
      const { addAddress } = await client.addAddress({ input: { name: 'Erin', line1: 'Main 1', city: 'Dublin', postalCode: 'D01', country: 'IE' } });
      const [dublin] = addAddress.addresses;
      assert.equal(dublin.isDefault, true);
      const { addAddress: both } = await client.addAddress({ input: { name: 'Erin', line1: 'High St 2', city: 'Cork', postalCode: 'T12', country: 'IE' } });
      const cork = both.addresses.find((a) => a.city === 'Cork')!;
      const { setDefaultAddress } = await client.setDefaultAddress({ id: cork.id });
      assert.deepEqual(
        setDefaultAddress.addresses.map((a) => [a.city, a.isDefault]),
        [
          ['Cork', true],
          ['Dublin', false],
        ],
      );
      const { updateAddress } = await client.updateAddress({
        id: dublin.id,
        input: { name: 'Erin', line1: 'Main 1', line2: 'Flat 2', city: 'Dublin', postalCode: 'D01', country: 'IE' },
      });
      assert.equal(updateAddress.addresses.find((a) => a.id === dublin.id)!.line2, 'Flat 2');
      const { removeAddress } = await client.removeAddress({ id: cork.id });
      assert.deepEqual(
        removeAddress.addresses.map((a) => [a.city, a.isDefault]),
        [['Dublin', true]],
      );
      const { updateMyProfile } = await client.updateMyProfile({ input: { email: 'erin@example.com', notificationPreferences: { email: false } } });
      assert.deepEqual([updateMyProfile.email, updateMyProfile.notificationPreferences], ['erin@example.com', { email: false, sms: false }]);
      const error = await client.updateMyProfile({ input: { email: 'nope' } }).then(
        () => assert.fail('a bad e-mail was accepted'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof SwiftCartError);
      assert.equal(error.code, ErrorCode.BadUserInput);
    } finally {
      await client.close();
    }
  });
});
