/**
 * The customer subgraph against real PostgreSQL and Kafka: profiles created on first use (once,
 * however many first requests race), validation that changes nothing, addresses with exactly one
 * default, ownership, admin listing, and CustomerRegistered / CustomerUpdated through the outbox.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { waitFor } from '../../../test/support/wait.ts';

const PROFILE =
  'id email name phone notificationPreferences { email sms } addresses { id name line1 line2 city postalCode country isDefault } defaultAddress { id } createdAt updatedAt';
const ME = `query { me { ${PROFILE} } }`;
const UPDATE = `mutation ($input: UpdateProfileInput!) { updateMyProfile(input: $input) { ${PROFILE} } }`;
const ADD = `mutation ($input: AddressInput!) { addAddress(input: $input) { ${PROFILE} } }`;
const UPDATE_ADDRESS = `mutation ($id: ID!, $input: AddressInput!) { updateAddress(id: $id, input: $input) { ${PROFILE} } }`;
const REMOVE = `mutation ($id: ID!) { removeAddress(id: $id) { ${PROFILE} } }`;
const SET_DEFAULT = `mutation ($id: ID!) { setDefaultAddress(id: $id) { ${PROFILE} } }`;
const CUSTOMER = `query ($id: ID!) { customer(id: $id) { ${PROFILE} } }`;
const CUSTOMERS = `query ($first: Int, $after: String, $search: String) { customers(first: $first, after: $after, search: $search) { totalCount edges { cursor node { id name email } } pageInfo { hasNextPage endCursor } } }`;
const ENTITIES = `query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Customer { id name } } }`;

const HOME = { name: 'Alice Liddell', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' };
const WORK = { name: 'Alice Liddell', line1: '1 Main Street', line2: 'Floor 3', city: 'Boston', postalCode: '02108', country: 'US' };

describe('customer subgraph', () => {
  let stack: TestStack;
  let url: string;
  let admin: string;

  /** A fresh customer id and its token, so tests never share a profile. */
  async function customer(): Promise<{ id: string; token: string }> {
    const id = `customer-${randomUUID()}`;
    return { id, token: await stack.token(id, ['customer']) };
  }

  async function call(query: string, token: string | null, variables: Record<string, unknown> = {}) {
    return stack.graphql(query, { url, token, variables });
  }

  async function ok(query: string, token: string | null, variables: Record<string, unknown> = {}) {
    const result = await call(query, token, variables);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data;
  }

  async function rowsOf(customerId: string) {
    const em = stack.services.customer!.runtime.db.fork();
    const [customers, addresses, outbox] = await Promise.all([
      em.execute('select * from customer where id = ?', [customerId]),
      em.execute('select * from address where customer_id = ? order by id', [customerId]),
      em.execute('select type, payload from outbox where aggregateid = ? order by sequence', [customerId]),
    ]);
    return { customers, addresses, outbox };
  }

  before(async () => {
    stack = await startStack({ services: ['customer'] });
    url = stack.services.customer!.url;
    admin = await stack.token('root', ['admin']);
  });
  after(async () => {
    await stack?.close();
  });

  test('me creates the profile from the token on first use, once, and announces CustomerRegistered once', async () => {
    const { id, token } = await customer();
    const results = await Promise.all(Array.from({ length: 8 }, () => ok(ME, token)));
    for (const data of results) {
      assert.equal(data.me.id, id);
      assert.equal(data.me.email, null);
      assert.deepEqual(data.me.addresses, []);
      assert.equal(data.me.defaultAddress, null);
      assert.deepEqual(data.me.notificationPreferences, { email: true, sms: false });
    }
    assert.equal(new Set(results.map((d) => d.me.createdAt)).size, 1, 'one profile');
    const rows = await rowsOf(id);
    assert.equal(rows.customers.length, 1);
    assert.deepEqual(
      rows.outbox.map((r: any) => r.type),
      ['CustomerRegistered'],
    );
    assert.equal(rows.outbox[0].payload.data.customerId, id);
    assert.equal(rows.outbox[0].payload.data.version, 1);
  });

  test('without a token, me and every mutation are UNAUTHENTICATED', async () => {
    for (const [query, variables] of [
      [ME, {}],
      [UPDATE, { input: { name: 'x' } }],
      [ADD, { input: HOME }],
    ] as const) {
      const result = await call(query, null, variables);
      assert.equal(result.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(result.errors));
    }
  });

  test('updateMyProfile changes the given fields, keeps the others, clears with "", and announces CustomerUpdated', async () => {
    const { id, token } = await customer();
    await ok(ME, token);
    let me = (await ok(UPDATE, token, { input: { email: ' alice@example.com ', name: 'Alice', phone: '+49 30 123-456' } })).updateMyProfile;
    assert.equal(me.email, 'alice@example.com');
    assert.equal(me.name, 'Alice');
    assert.equal(me.phone, '+4930123456');
    me = (await ok(UPDATE, token, { input: { notificationPreferences: { sms: true } } })).updateMyProfile;
    assert.deepEqual(me.notificationPreferences, { email: true, sms: true });
    assert.equal(me.name, 'Alice', 'a field left out stays');
    me = (await ok(UPDATE, token, { input: { notificationPreferences: { sms: false }, phone: '' } })).updateMyProfile;
    assert.equal(me.phone, null, '"" clears');
    const { outbox } = await rowsOf(id);
    assert.deepEqual(
      outbox.map((r: any) => r.type),
      ['CustomerRegistered', 'CustomerUpdated', 'CustomerUpdated', 'CustomerUpdated'],
    );
    const versions = outbox.map((r: any) => r.payload.data.version);
    assert.deepEqual(
      versions,
      [...versions].sort((a: number, b: number) => a - b),
    );
    assert.equal(new Set(versions).size, versions.length, 'every change has a new version');
    assert.equal(outbox[1].payload.data.email, 'alice@example.com');
  });

  test('bad profile input is BAD_USER_INPUT naming the field, and changes nothing', async () => {
    const { id, token } = await customer();
    await ok(UPDATE, token, { input: { name: 'Bob', phone: '+4930123456' } });
    const before = await rowsOf(id);
    for (const [input, field] of [
      [{ email: 'not-an-email' }, 'input.email'],
      [{ email: `${'a'.repeat(250)}@example.com` }, 'input.email'],
      [{ name: 'x'.repeat(201) }, 'input.name'],
      [{ phone: '12345' }, 'input.phone'],
      [{ phone: '+0123456789' }, 'input.phone'],
      [{ phone: '', notificationPreferences: { sms: true } }, 'input.notificationPreferences.sms'],
    ] as const) {
      const result = await call(UPDATE, token, { input });
      assert.equal(result.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', `${JSON.stringify(input)}: ${JSON.stringify(result.errors)}`);
      assert.equal(result.errors[0].extensions.field, field, JSON.stringify(input));
      assert.ok(result.errors[0].message.length > 10);
    }
    assert.deepEqual(await rowsOf(id), before, 'nothing written');
  });

  test('addresses: the first is the default, another can become it, removing the default promotes the oldest', async () => {
    const { id, token } = await customer();
    const home = (await ok(ADD, token, { input: HOME })).addAddress;
    assert.equal(home.addresses.length, 1);
    assert.equal(home.addresses[0].isDefault, true, 'the first address is the default');
    assert.equal(home.addresses[0].line2, null);
    const homeId = home.addresses[0].id;
    assert.equal(home.defaultAddress.id, homeId);

    const both = (await ok(ADD, token, { input: { ...WORK, isDefault: true } })).addAddress;
    const workId = both.addresses.find((a: any) => a.city === 'Boston').id;
    assert.deepEqual(
      both.addresses.map((a: any) => [a.id, a.isDefault]),
      [
        [workId, true],
        [homeId, false],
      ],
      'the default first',
    );
    const third = (await ok(ADD, token, { input: { ...HOME, line1: 'Nebenstraße 2' } })).addAddress.addresses.find((a: any) => a.line1 === 'Nebenstraße 2');
    assert.equal(third.isDefault, false);

    const homeAgain = (await ok(SET_DEFAULT, token, { id: homeId })).setDefaultAddress;
    assert.equal(homeAgain.defaultAddress.id, homeId);
    assert.equal(homeAgain.addresses.filter((a: any) => a.isDefault).length, 1);

    const changed = (await ok(UPDATE_ADDRESS, token, { id: workId, input: { ...WORK, city: 'Cambridge' } })).updateAddress;
    assert.equal(changed.addresses.find((a: any) => a.id === workId).city, 'Cambridge');
    assert.equal(changed.defaultAddress.id, homeId, 'isDefault false does not take the default away');

    const removed = (await ok(REMOVE, token, { id: homeId })).removeAddress;
    assert.deepEqual(
      removed.addresses.map((a: any) => a.id),
      [workId, third.id],
    );
    assert.equal(removed.defaultAddress.id, workId, 'the oldest remaining address became the default');
    const { addresses, outbox } = await rowsOf(id);
    assert.equal(addresses.filter((a: any) => a.is_default).length, 1);
    assert.deepEqual(outbox.at(-1)!.payload.data.addresses, [
      {
        id: workId,
        name: WORK.name,
        line1: WORK.line1,
        line2: WORK.line2,
        city: 'Cambridge',
        postalCode: WORK.postalCode,
        country: WORK.country,
        isDefault: true,
      },
      {
        id: third.id,
        name: HOME.name,
        line1: 'Nebenstraße 2',
        line2: null,
        city: HOME.city,
        postalCode: HOME.postalCode,
        country: HOME.country,
        isDefault: false,
      },
    ]);
  });

  test('two tabs adding addresses at once lose nothing and keep exactly one default', async () => {
    const { id, token } = await customer();
    await Promise.all(Array.from({ length: 6 }, (_, i) => ok(ADD, token, { input: { ...HOME, line1: `Street ${i}`, isDefault: true } })));
    const { addresses } = await rowsOf(id);
    assert.equal(addresses.length, 6);
    assert.equal(addresses.filter((a: any) => a.is_default).length, 1);
  });

  test("bad addresses are BAD_USER_INPUT naming the field; someone else's address is NOT_FOUND; nothing changes", async () => {
    const alice = await customer();
    const bob = await customer();
    const bobsAddress = (await ok(ADD, bob.token, { input: HOME })).addAddress.addresses[0].id;
    await ok(ADD, alice.token, { input: HOME });
    const before = await rowsOf(alice.id);
    for (const [input, field] of [
      [{ ...HOME, country: 'de' }, 'input.country'],
      [{ ...HOME, country: 'XX' }, 'input.country'],
      [{ ...HOME, country: 'EU' }, 'input.country'],
      [{ ...HOME, name: ' ' }, 'input.name'],
      [{ ...HOME, line1: 'x'.repeat(201) }, 'input.line1'],
      [{ ...HOME, postalCode: '1'.repeat(21) }, 'input.postalCode'],
      [{ ...HOME, city: '' }, 'input.city'],
    ] as const) {
      const result = await call(ADD, alice.token, { input });
      assert.equal(result.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', `${JSON.stringify(input)}: ${JSON.stringify(result.errors)}`);
      assert.equal(result.errors[0].extensions.field, field);
    }
    for (const [query, variables] of [
      [SET_DEFAULT, { id: bobsAddress }],
      [REMOVE, { id: bobsAddress }],
      [UPDATE_ADDRESS, { id: bobsAddress, input: WORK }],
      [REMOVE, { id: randomUUID() }],
    ] as const) {
      const result = await call(query, alice.token, variables);
      assert.equal(result.errors?.[0]?.extensions?.code, 'NOT_FOUND', JSON.stringify(result.errors));
    }
    const badId = await call(REMOVE, alice.token, { id: 'not-a-uuid' });
    assert.equal(badId.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.deepEqual(await rowsOf(alice.id), before, 'nothing written');
    assert.equal((await rowsOf(bob.id)).addresses.length, 1, "bob's address is untouched");
  });

  test('at most 20 addresses: the 21st is CONFLICT', async () => {
    const { id, token } = await customer();
    for (let i = 0; i < 20; i++) await ok(ADD, token, { input: { ...HOME, line1: `Street ${i}` } });
    const result = await call(ADD, token, { input: HOME });
    assert.equal(result.errors?.[0]?.extensions?.code, 'CONFLICT');
    assert.equal((await rowsOf(id)).addresses.length, 20);
  });

  test('customer(id) and customers are for admins; a customer reads only their own reference', async () => {
    const alice = await customer();
    const bob = await customer();
    await ok(UPDATE, alice.token, { input: { name: 'Alice Searchable', email: 'alice.search@example.com' } });
    await ok(UPDATE, bob.token, { input: { name: 'Bob' } });

    assert.equal((await call(CUSTOMER, alice.token, { id: alice.id })).errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal((await call(CUSTOMERS, alice.token)).errors?.[0]?.extensions?.code, 'FORBIDDEN');
    assert.equal((await ok(CUSTOMER, admin, { id: bob.id })).customer.name, 'Bob');
    assert.equal((await ok(CUSTOMER, admin, { id: 'nobody' })).customer, null);

    const found = (await ok(CUSTOMERS, admin, { search: 'SEARCHABLE' })).customers;
    assert.equal(found.totalCount, 1);
    assert.equal(found.edges[0].node.id, alice.id);
    const byEmail = (await ok(CUSTOMERS, admin, { search: 'alice.search@' })).customers;
    assert.equal(byEmail.edges[0]?.node.id, alice.id);
    assert.equal((await ok(CUSTOMERS, admin, { search: '%' })).customers.totalCount, 0, '% matches itself, not anything');

    // Pages in id order, every customer once.
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: any = (await ok(CUSTOMERS, admin, { first: 2, after })).customers;
      seen.push(...page.edges.map((e: any) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(seen.includes(alice.id) && seen.includes(bob.id));
    assert.equal((await call(CUSTOMERS, admin, { first: 0 })).errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');

    const own = await call(ENTITIES, alice.token, { representations: [{ __typename: 'Customer', id: alice.id }] });
    assert.deepEqual(own.data._entities, [{ id: alice.id, name: 'Alice Searchable' }]);
    const other = await call(ENTITIES, alice.token, { representations: [{ __typename: 'Customer', id: bob.id }] });
    assert.equal(other.errors?.[0]?.extensions?.code, 'FORBIDDEN');
  });

  test('the relay publishes CustomerRegistered and CustomerUpdated to customer.events.v1, keyed by the customer id', async () => {
    const { id, token } = await customer();
    await ok(UPDATE, token, { input: { name: 'Published' } });
    const messages = await waitFor(
      async () => {
        const all = await stack.services.customer!.runtime.kafka.readTopic('customer.events.v1', { timeoutMs: 5_000 });
        const ours = all.filter((m) => m.key === id);
        return ours.length >= 2 ? ours : undefined;
      },
      'both events of the customer on customer.events.v1',
      20_000,
    );
    assert.deepEqual(
      messages.map((m) => JSON.parse(m.value!).type),
      ['CustomerRegistered', 'CustomerUpdated'],
    );
    assert.equal(JSON.parse(messages[1].value!).data.name, 'Published');
  });
});
