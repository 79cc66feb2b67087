/**
 * A message that kills its consumer's process ends in the DLQ (issue 11): payment runs as a child
 * process that dies with SIGKILL whenever it is about to apply one PaymentRequested
 * (TEST_CRASH_AT=handling:<event id>), as a bug in a handler, or an out-of-memory, would. The test
 * restarts it after every death, as a supervisor does. Each handing of the message is counted in
 * PostgreSQL before the work, so after CONSUMER_MAX_DELIVERIES (3) deaths the next process
 * dead-letters it unapplied and goes on with the event behind it. Before the counts were durable,
 * the message was redelivered, and the process killed, forever.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  DLQ_ATTEMPTS_HEADER,
  DLQ_CONSUMER_HEADER,
  REPO_ROOT,
  TEST_CRASH_AT,
  createEvent,
  createKafka,
  createLogger,
  dlqTopic,
  openDatabase,
  outboxMigrations,
  type Database,
  type KafkaClient,
} from '@swiftcart/platform';
import { dropDatabases, ensureDatabases, freePort } from '../../scripts/infra.ts';
import { Payment } from '../../subgraphs/payment/src/entities.ts';
import { migrations } from '../../subgraphs/payment/src/migrations.ts';
import { childServiceEnv, isolatedConfig } from '../support/stack.ts';
import { waitFor } from '../support/saga.ts';

const TOPIC = 'order.events.v1';
const MAX_DELIVERIES = 3;

describe('a message that kills the consumer process', () => {
  const config = isolatedConfig({ KAFKA_SESSION_TIMEOUT_MS: '6000' });
  const log = createLogger('poison-test', 'fatal');
  let kafka: KafkaClient;
  let db: Database;
  let child: ChildProcess | undefined;
  const output: string[] = [];

  before(async () => {
    await ensureDatabases(config, ['payment']);
    kafka = createKafka(config, log, 'poison-test');
    db = await openDatabase({ config, service: 'payment', entities: [Payment], migrations: [...migrations, ...outboxMigrations], log });
  });
  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await db?.close();
    await kafka?.close();
    await dropDatabases(config, ['payment']);
  });

  it(`lands in the DLQ after ${MAX_DELIVERIES} deaths, unapplied, and the consumer goes on with the next`, { timeout: 180_000 }, async () => {
    const request = (orderId: string) =>
      createEvent({
        type: 'PaymentRequested',
        source: 'order',
        aggregateType: 'Order',
        aggregateId: orderId,
        causationId: null,
        data: { orderId, customerId: 'alice', amount: { amount: 1_000, currency: 'EUR' }, paymentMethod: 'tok_visa' },
      });
    const poison = request(randomUUID());
    const next = request(randomUUID());
    const port = await freePort();
    const start = () => {
      child = spawn(process.execPath, [path.join(REPO_ROOT, 'subgraphs/payment/src/main.ts')], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          ...childServiceEnv(config),
          LOG_LEVEL: 'warn',
          SERVICE_ROLE: 'all',
          PAYMENT_PORT: String(port),
          KAFKA_SESSION_TIMEOUT_MS: '6000',
          PAYMENT_PROVIDER_LATENCY_MS: '5',
          CONSUMER_MAX_DELIVERIES: String(MAX_DELIVERIES),
          [TEST_CRASH_AT]: `handling:${poison.id}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
      return new Promise<NodeJS.Signals | null>((resolve) => child!.once('exit', (_code, signal) => resolve(signal)));
    };

    let exited = start();
    await waitFor(
      async () => ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok ? true : undefined),
      'payment to be ready',
      30_000,
      () => output.slice(-5),
    );
    // One key, so both are on one partition, the poison first: the next waits behind it.
    await kafka.publish(
      TOPIC,
      [poison, next].map((event) => ({ key: poison.aggregateId, value: JSON.stringify(event), headers: { id: event.id, type: event.type } })),
    );

    const authorized = async () => (await db.fork().findOne(Payment, { orderId: next.data.orderId }))?.status === 'AUTHORIZED';
    let deaths = 0;
    while (!(await authorized())) {
      const ended = await Promise.race([
        exited,
        waitFor(
          async () => (await authorized()) || undefined,
          'the next event to be applied',
          60_000,
          () => output.join('').slice(-2000),
        ).then(() => 'applied' as const),
      ]);
      if (ended === 'applied') break;
      assert.equal(ended, 'SIGKILL', `payment died of something else: ${output.slice(-5).join('')}`);
      deaths++;
      assert.ok(deaths <= MAX_DELIVERIES, `died ${deaths} times: the poison was not dead-lettered`);
      exited = start();
    }
    assert.equal(deaths, MAX_DELIVERIES, 'one death per handing until the limit');

    const dead = await kafka.readTopic(dlqTopic(TOPIC), { timeoutMs: 15_000 });
    const letter = dead.find((m) => m.headers.id === poison.id);
    assert.ok(letter, 'the poison is in the DLQ');
    assert.equal(letter.headers[DLQ_ATTEMPTS_HEADER], String(MAX_DELIVERIES));
    assert.equal(letter.headers[DLQ_CONSUMER_HEADER], 'payment.order-events');
    assert.equal(JSON.parse(letter.value!).id, poison.id, 'the message as it was');
    assert.equal(await db.fork().findOne(Payment, { orderId: poison.data.orderId }), null, 'the poison was never applied');
    assert.equal(dead.filter((m) => m.headers.id === next.id).length, 0, 'the next event was applied, not dead-lettered');
  });
});
