/**
 * A Kafka broker of a test's own: the project's KRaft broker (scripts/kafka/broker.ts, the same
 * jars) with its files in a temporary directory and on a free port, that a test may kill and start
 * again to see the platform live through a Kafka outage. The shared broker on 9092, which other
 * test files use at the same time, is never touched.
 *
 * ```ts
 * await using kafka = await TestKafkaBroker.start();
 * const system = await startProcessStack({ KAFKA_BROKERS: kafka.broker });
 * await kafka.kill();     // SIGKILL: no clean shutdown, as in a crash
 * await kafka.restart();  // same port, same data: topics and committed offsets survive
 * ```
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureKafka, freePort, portFree, stopKafka } from '../../scripts/infra.ts';

/** A free port whose successor is free too: the broker's controller listens on port + 1. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (await portFree(port + 1)) return port;
  }
  throw new Error('no two adjacent free ports found for a test broker');
}

/** One scratch broker; dispose it (`await using`) to kill it and delete its files. */
export class TestKafkaBroker implements AsyncDisposable {
  /** `127.0.0.1:<port>`, for KAFKA_BROKERS. */
  readonly broker: string;
  readonly #home: string;
  // 'exit' handlers run synchronously: the broker's process group is killed from its pid file.
  #killOnExit = () => {
    try {
      process.kill(-Number(fs.readFileSync(path.join(this.#home, 'kafka.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // not running
    }
  };

  private constructor(port: number, home: string) {
    this.broker = `127.0.0.1:${port}`;
    this.#home = home;
  }

  /** Formats a new broker in a temporary directory and starts it; resolves once it answers. */
  static async start(): Promise<TestKafkaBroker> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'swiftcart-kafka-'));
    const broker = new TestKafkaBroker(await freePortPair(), home);
    process.once('exit', broker.#killOnExit);
    try {
      await broker.restart();
    } catch (error) {
      await broker.close();
      throw error;
    }
    return broker;
  }

  /** Kills the broker with SIGKILL (no controlled shutdown) and waits until it is gone. */
  async kill(): Promise<void> {
    const result = await stopKafka({ home: this.#home, signal: 'SIGKILL' });
    if (!result.stopped) throw new Error(`the test broker on ${this.broker} was not running`);
  }

  /** Starts the broker on the same port with the same data, and resolves once it answers again. */
  async restart(): Promise<void> {
    await ensureKafka({ home: this.#home, env: { ...process.env, KAFKA_BROKERS: this.broker } });
  }

  async close(): Promise<void> {
    process.off('exit', this.#killOnExit);
    await stopKafka({ home: this.#home, signal: 'SIGKILL' }).catch(() => undefined);
    fs.rmSync(this.#home, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
