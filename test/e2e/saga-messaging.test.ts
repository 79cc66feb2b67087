/**
 * The saga's messaging guarantees, end to end: an event delivered twice changes nothing (the inbox
 * dedups it, and the consumers count it), and a message that is not a valid event goes to the
 * topic's dead-letter queue while the consumer carries on with the next one.
 *
 * The duplicates are real: a test reader captures a message from the topic and this test publishes
 * the very same key, value and headers again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { DLQ_ERROR_HEADER, DLQ_ORIGINAL_PARTITION_HEADER, createEvent } from '@swiftcart/platform';
import type { TestStack } from '../support/stack.ts';
import {
  type SagaSystem,
  consumerMetric,
  drainSystem,
  placeOrder,
  readEvents,
  readOrder,
  startSeededSaga,
  stockOf,
  waitFor,
  waitForOrder,
  waitForStatus,
  waitForStock,
} from '../support/saga.ts';

/**
 * `perPartition` keys for each of `partitions` partitions, as kafkajs's default partitioner (the
 * platform producer's) places them, so that messages under them reach every partition for certain.
 */
function keysCovering(partitions: number, perPartition: number, prefix: string): string[] {
  const partitionOf = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    partitionErrorCode: 0,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
  const keys: string[][] = Array.from({ length: partitions }, () => []);
  for (let i = 0; keys.some((k) => k.length < perPartition); i++) {
    const key = `${prefix}-${i}`;
    const partition = partitionOf({ topic: 'inventory.events.v1', partitionMetadata, message: { key, value: null } });
    if (keys[partition].length < perPartition) keys[partition].push(key);
  }
  return keys.flat();
}

describe('order saga messaging: duplicates and dead letters', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let admin: string;

  before(async () => {
    ({ stack, system, admin } = await startSeededSaga([
      { sku: 'DUP-1', onHand: 10, priceAmount: 1500 },
      { sku: 'DUP-2', onHand: 5, priceAmount: 100 },
      { sku: 'DLQ-1', onHand: 10, priceAmount: 300 },
    ]));
  });
  after(() => stack?.close());

  /** Re-publishes a captured message exactly: same key, value and headers. */
  const republish = (topic: string, message: { key: string | null; value: string | null; headers: Readonly<Record<string, string>> }) =>
    system.kafka.publish(topic, [{ key: message.key, value: message.value, headers: { ...message.headers } }]);

  it('a StockReserved delivered twice changes nothing: one timeline entry, one PaymentRequested, duplicates counted', async () => {
    const token = await stack.token('dup-customer', ['customer']);
    const order = await placeOrder(system, token, [{ sku: 'DUP-1', quantity: 2 }], 'tok_visa');
    // Let the whole saga settle first, timeline-only entries included, so any later change is the duplicate's.
    const settled = await waitForOrder(
      system,
      token,
      order.id,
      'CONFIRMED with StockCommitted and ShipmentCreated',
      (o) => o.status === 'CONFIRMED' && ['StockCommitted', 'ShipmentCreated'].every((t) => o.timeline.some((e: any) => e.eventType === t)),
    );
    const stockBefore = await waitForStock(system, 'DUP-1', { onHand: 8, reserved: 0 });

    const [captured] = await waitFor(async () => {
      const found = await readEvents(system.kafka, 'inventory.events.v1', (e) => e.type === 'StockReserved' && (e.data as any).orderId === order.id);
      return found.length === 1 ? found : undefined;
    }, 'the StockReserved of the order on inventory.events.v1');
    assert.equal(captured.message.key, order.id, 'saga events are keyed by the order id');
    assert.equal(captured.message.headers.id, captured.event.id);

    const duplicatesBefore = consumerMetric(stack, 'order', 'duplicates');
    const processedBefore = consumerMetric(stack, 'order', 'processed');
    await republish('inventory.events.v1', captured.message);
    await waitFor(
      () => (consumerMetric(stack, 'order', 'duplicates') > duplicatesBefore ? true : undefined),
      "the order service's consumer to count the duplicate",
      15_000,
      () => stack.services.order!.consumers.map((c) => [c.consumer, c.metrics]),
    );
    assert.equal(consumerMetric(stack, 'order', 'duplicates'), duplicatesBefore + 1);
    assert.equal(consumerMetric(stack, 'order', 'processed'), processedBefore, 'the duplicate was not applied');

    await drainSystem(system);
    const after = await readOrder(system, token, order.id);
    assert.equal(after.status, 'CONFIRMED');
    assert.equal(after.timeline.filter((e: any) => e.eventType === 'StockReserved').length, 1, 'StockReserved once on the timeline');
    assert.deepEqual(after.timeline, settled.timeline, 'the timeline is exactly as before');
    const requested = await readEvents(system.kafka, 'order.events.v1', (e) => e.aggregateId === order.id && e.type === 'PaymentRequested');
    assert.equal(requested.length, 1, 'payment was asked once');
    assert.deepEqual(await stockOf(system, 'DUP-1'), stockBefore);
    assert.equal(after.payment.status, 'AUTHORIZED');
    assert.equal(after.payment.attempts, 1, 'the provider was asked once');
  });

  it('an OrderPlaced delivered twice reserves nothing again, even after stock came back for a rejected order', async () => {
    const token = await stack.token('dup-rejected', ['customer']);
    const order = await placeOrder(system, token, [{ sku: 'DUP-2', quantity: 7 }], 'tok_visa');
    assert.equal((await waitForStatus(system, token, order.id, ['REJECTED', 'CONFIRMED', 'CANCELLED'])).status, 'REJECTED');
    // Enough stock now: applied a second time, this OrderPlaced would reserve 7 units for a rejected order.
    const restock = await system.graphql(`mutation { adjustStock(sku: "DUP-2", delta: 5, reason: "restock") { onHand reserved } }`, { token: admin });
    assert.equal(restock.errors, undefined, JSON.stringify(restock.errors));
    assert.deepEqual(restock.data.adjustStock, { onHand: 10, reserved: 0 });

    const [placed] = await waitFor(async () => {
      const found = await readEvents(system.kafka, 'order.events.v1', (e) => e.type === 'OrderPlaced' && e.aggregateId === order.id);
      return found.length === 1 ? found : undefined;
    }, 'the OrderPlaced of the order on order.events.v1');
    const inventoryDuplicates = consumerMetric(stack, 'inventory', 'duplicates');
    await republish('order.events.v1', placed.message);
    await waitFor(
      () => (consumerMetric(stack, 'inventory', 'duplicates') > inventoryDuplicates ? true : undefined),
      "inventory's consumer to count the duplicate",
      15_000,
      () => stack.services.inventory!.consumers.map((c) => [c.consumer, c.metrics]),
    );
    await drainSystem(system);
    assert.deepEqual(await stockOf(system, 'DUP-2'), { onHand: 10, reserved: 0, available: 10 }, 'nothing reserved by the duplicate');
    const answers = await readEvents(system.kafka, 'inventory.events.v1', (e) => (e.data as any)?.orderId === order.id);
    assert.deepEqual(
      answers.map((a) => a.event.type),
      ['StockReservationFailed'],
      'inventory answered once',
    );
    assert.equal((await readOrder(system, token, order.id)).status, 'REJECTED');
  });

  it('schema-invalid messages go to inventory.events.v1.dlq with a dlq-error header, and the saga carries on', async () => {
    const deadBefore = consumerMetric(stack, 'order', 'deadLettered');
    const marker = randomUUID();
    // Not JSON at all, four to each partition of the topic (keys chosen by the producer's own partitioner).
    const partitionCount = (await system.kafka.topicOffsets('inventory.events.v1')).length;
    const garbage = keysCovering(partitionCount, 4, `garbage-${marker}`).map((key, i) => ({ key, value: `{"not json" ${marker} ${i}`, headers: {} }));
    // A well-formed envelope whose data breaks the StockReserved contract (items needs at least one line).
    const orderId = randomUUID();
    const invalid = createEvent({
      type: 'StockReserved',
      source: 'inventory',
      aggregateType: 'Order',
      aggregateId: orderId,
      correlationId: orderId,
      causationId: null,
      data: { orderId, items: [] },
    });
    // A StockReserved whose line has quantity 0.
    const orderId2 = randomUUID();
    const invalid2 = createEvent({
      type: 'StockReserved',
      source: 'inventory',
      aggregateType: 'Order',
      aggregateId: orderId2,
      correlationId: orderId2,
      causationId: null,
      data: { orderId: orderId2, items: [{ sku: 'DLQ-1', quantity: 0 }] },
    });
    await system.kafka.publish('inventory.events.v1', [
      ...garbage,
      { key: orderId, value: JSON.stringify(invalid), headers: { id: invalid.id, type: invalid.type } },
      { key: orderId2, value: JSON.stringify(invalid2), headers: { id: invalid2.id, type: invalid2.type } },
    ]);

    const expected = [...garbage.map((g) => g.value), JSON.stringify(invalid), JSON.stringify(invalid2)];
    const dead = await waitFor(
      async () => {
        const messages = await system.kafka.readTopic('inventory.events.v1.dlq', { timeoutMs: 10_000 });
        const ours = messages.filter((m) => expected.includes(m.value ?? ''));
        return ours.length >= expected.length ? ours : undefined;
      },
      `${expected.length} dead letters on inventory.events.v1.dlq`,
      20_000,
      undefined,
      500,
    );
    assert.equal(dead.length, expected.length, 'each one dead-lettered once');
    for (const message of dead) {
      const error = message.headers[DLQ_ERROR_HEADER];
      assert.ok(error && error.length > 0, `dead letter without ${DLQ_ERROR_HEADER}: ${JSON.stringify(message.headers)}`);
    }
    const byValue = new Map(dead.map((m) => [m.value, m]));
    assert.match(byValue.get(garbage[0].value)!.headers[DLQ_ERROR_HEADER], /json/i);
    assert.match(byValue.get(JSON.stringify(invalid))!.headers[DLQ_ERROR_HEADER], /items/);
    assert.match(byValue.get(JSON.stringify(invalid2))!.headers[DLQ_ERROR_HEADER], /quantity|minimum|>= 1/);
    assert.equal(byValue.get(JSON.stringify(invalid))!.key, orderId, 'the dead letter keeps its key');
    const partitions = (await system.kafka.topicOffsets('inventory.events.v1')).map((p) => String(p.partition));
    const deadFrom = new Set(dead.map((m) => m.headers[DLQ_ORIGINAL_PARTITION_HEADER]));
    assert.deepEqual([...deadFrom].sort(), partitions.sort(), 'dead letters came from every partition of the topic');
    assert.equal(consumerMetric(stack, 'order', 'deadLettered'), deadBefore + expected.length);

    // The consumer went on: a normal order still completes.
    const token = await stack.token('dlq-customer', ['customer']);
    const order = await placeOrder(system, token, [{ sku: 'DLQ-1', quantity: 3 }], 'tok_visa');
    const confirmed = await waitForStatus(system, token, order.id, ['CONFIRMED', 'CANCELLED', 'REJECTED']);
    assert.equal(confirmed.status, 'CONFIRMED', JSON.stringify(confirmed.timeline));
    await waitForStock(system, 'DLQ-1', { onHand: 7, reserved: 0, available: 7 });
    // Several orders, so the saga's traffic crosses every partition that had a dead letter.
    const more = await Promise.all(Array.from({ length: 6 }, () => placeOrder(system, token, [{ sku: 'DLQ-1', quantity: 1 }], 'tok_visa')));
    for (const o of more) assert.equal((await waitForStatus(system, token, o.id, ['CONFIRMED', 'CANCELLED', 'REJECTED'])).status, 'CONFIRMED');
    await waitForStock(system, 'DLQ-1', { onHand: 1, reserved: 0, available: 1 });
  });
});
