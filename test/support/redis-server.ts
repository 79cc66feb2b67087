/**
 * A Redis server of a test's own: `redis-server` (from PATH) as a child process on a free port,
 * without persistence, that a test may stop and restart on the same port to see how its clients
 * live through a Redis outage. The shared Redis on 6379 is never touched.
 *
 * ```ts
 * await using redis = await TestRedisServer.start();
 * const config = isolatedConfig({ REDIS_URL: redis.url });
 * // ... clients connect ...
 * await redis.restart();              // every connection drops; the data is gone
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from '../../scripts/infra.ts';
import { untilAnswering } from './server-ready.ts';

import os from 'node:os';

/** How long start-up and shutdown may take before the test fails. */
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** Whether a Redis server answers PING on `port` (one short-lived raw connection, no client library). */
async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

/**
 * One `redis-server` child process on a fixed port. {@link TestRedisServer.stop} and
 * {@link TestRedisServer.restart} keep the port, so clients configured with {@link TestRedisServer.url}
 * reconnect to the new process by themselves. Dispose it (`await using`) to stop it for good; it is
 * also killed if the test process exits first.
 */
export class TestRedisServer implements AsyncDisposable {
  /** The port it listens on, the same across restarts. */
  readonly port: number;
  #child: ChildProcess | null = null;
  #killOnExit = () => this.#child?.kill('SIGKILL');

  private constructor(port: number) {
    this.port = port;
  }

  /** Starts a server on `port` (default: a free one) and resolves once it answers PING. */
  static async start(options: { readonly port?: number } = {}): Promise<TestRedisServer> {
    const server = new TestRedisServer(options.port ?? (await freePort()));
    await server.start();
    return server;
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#child !== null;
  }

  /** Starts the process again after {@link TestRedisServer.stop}; a no-op while it runs. */
  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', os.tmpdir(), '--loglevel', 'warning'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (chunk) => {
      stderr += chunk;
    });
    this.#child = child;
    process.once('exit', this.#killOnExit);
    try {
      await untilAnswering(
        child,
        `redis-server on port ${this.port}`,
        () => answersPing(this.port),
        READY_TIMEOUT_MS,
        () => stderr.trim(),
      );
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and resolves once it has exited; every client connection drops. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    process.off('exit', this.#killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the server and starts a new, empty one on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}
