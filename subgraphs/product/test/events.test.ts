/** Catalogue changes reach Kafka through the outbox, with versions, and nothing else does. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { eventsTopic, type AnyEventEnvelope } from '@swiftcart/platform';
import { startStack, type TestStack } from '../../../test/support/stack.ts';
import { drain } from '../../../test/support/drain.ts';
import { waitFor } from '../../../test/support/wait.ts';
import { seedProducts } from '../src/catalogue.ts';

describe('product events', () => {
  let stack: TestStack;
  let admin: string;
  const seen: AnyEventEnvelope[] = [];

  const saw = () => seen.map((e) => [e.type, (e.data as any).sku, (e.data as any).version]);
  const eventsOf = (sku: string) => seen.filter((e) => e.aggregateId === sku);

  before(async () => {
    stack = await startStack({ services: ['product'] });
    admin = await stack.token('root', ['admin']);
    await stack.services.product!.runtime.kafka.consume(`test-${randomUUID()}`, [eventsTopic('product')], async (message) => {
      assert.equal(message.headers.type, JSON.parse(message.value!).type);
      seen.push(JSON.parse(message.value!));
    });
  });
  after(() => stack?.close());

  it('create, update and discontinue each publish one event, keyed by sku, with growing versions', async () => {
    const ok = async (query: string) => {
      const result = await stack.graphql(query, { token: admin });
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    };
    await ok(`mutation { createProduct(input: { sku: "EV-1", name: "Lamp", price: { amount: 1000, currency: "EUR" } }) { sku } }`);
    await ok(`mutation { updateProduct(sku: "EV-1", input: { price: { amount: 1200, currency: "EUR" } }) { sku } }`);
    await ok(`mutation { discontinueProduct(sku: "EV-1") { sku } }`);
    await ok(`mutation { discontinueProduct(sku: "EV-1") { sku } }`);
    await waitFor(() => eventsOf('EV-1').length >= 3, 'three EV-1 events', undefined, saw);
    await drain(stack);
    const events = eventsOf('EV-1');
    assert.deepEqual(
      events.map((e) => e.type),
      ['ProductCreated', 'ProductUpdated', 'ProductDiscontinued'],
      'a second discontinue publishes nothing',
    );
    assert.deepEqual(
      events.map((e) => (e.data as any).version),
      [1, 2, 3],
    );
    assert.deepEqual((events[1].data as any).price, { amount: 1200, currency: 'EUR' });
    assert.ok(events.every((e) => e.source === 'product' && e.aggregateType === 'Product'));
  });

  it('a refused change publishes nothing', async () => {
    const duplicate = await stack.graphql(`mutation { createProduct(input: { sku: "EV-1", name: "Again", price: { amount: 1, currency: "EUR" } }) { sku } }`, {
      token: admin,
    });
    assert.equal(duplicate.errors?.[0].extensions?.code, 'CONFLICT');
    const forbidden = await stack.graphql(`mutation { updateProduct(sku: "EV-1", input: { name: "x" }) { sku } }`);
    assert.equal(forbidden.errors?.[0].extensions?.code, 'FORBIDDEN');
    const rows = await stack.services.product!.runtime.db.fork().getConnection().execute(`select count(*)::int as n from outbox where aggregateid = 'EV-1'`);
    assert.equal(rows[0].n, 3);
  });

  it('seeded products are announced once, and re-seeding announces nothing', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => ({ sku: `SEED-${i}`, name: `Seed ${i}`, description: '', priceAmount: 100 + i, currency: 'EUR' }));
    assert.equal(await seedProducts(stack.services.product!.runtime.db.fork(), rows), 30);
    assert.equal(await seedProducts(stack.services.product!.runtime.db.fork(), rows), 0);
    await waitFor(() => seen.filter((e) => e.aggregateId.startsWith('SEED-')).length >= 30, '30 seed events', undefined, saw);
    await drain(stack);
    const seeded = seen.filter((e) => e.aggregateId.startsWith('SEED-'));
    assert.equal(seeded.length, 30);
    assert.deepEqual(seeded.find((e) => e.aggregateId === 'SEED-7')!.data as any, {
      sku: 'SEED-7',
      name: 'Seed 7',
      price: { amount: 107, currency: 'EUR' },
      status: 'ACTIVE',
      version: 1,
    });
  });
});
