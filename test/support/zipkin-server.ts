/**
 * A Zipkin server of a test's own: the same jar `npm start` runs (scripts/observability.ts), on a
 * free port, keeping spans in memory, with the query API a test reads traces back from.
 *
 * ```ts
 * await using zipkin = await TestZipkinServer.start();
 * // processes export to zipkin.spansUrl ...
 * const trace = await zipkin.trace(traceId);
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../scripts/infra.ts';
import { ensureZipkinJar, zipkinCommand } from '../../scripts/observability.ts';
import { untilAnswering } from './server-ready.ts';

/** A JVM on two busy cores: Zipkin needs 10 to 30 s to answer. */
const READY_TIMEOUT_MS = 120_000;

/** One span as Zipkin's v2 API returns it. */
export interface ZipkinSpan {
  readonly traceId: string;
  readonly id: string;
  readonly parentId?: string;
  readonly name: string;
  readonly kind?: 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';
  /** Microseconds since the epoch. */
  readonly timestamp: number;
  readonly duration?: number;
  readonly localEndpoint?: { readonly serviceName?: string };
  readonly tags?: Readonly<Record<string, string>>;
}

/** Zipkin's server as a child process; dispose it to stop it. */
export class TestZipkinServer implements AsyncDisposable {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #output: string[] = [];
  #killOnExit = () => this.#child.kill('SIGKILL');

  private constructor(port: number, child: ChildProcess) {
    this.port = port;
    this.#child = child;
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        this.#output.push(chunk);
        if (this.#output.length > 200) this.#output.shift();
      });
    }
    process.once('exit', this.#killOnExit);
  }

  /** Resolves the jar (once per machine), starts the server and resolves once it is healthy. */
  static async start(): Promise<TestZipkinServer> {
    const jar = await ensureZipkinJar();
    const port = await freePort();
    const { command, args, env } = zipkinCommand(jar, port);
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new TestZipkinServer(port, child);
    try {
      await untilAnswering(
        child,
        'Zipkin',
        () => server.#healthy(),
        READY_TIMEOUT_MS,
        () => server.#output.join('').slice(-2_000),
      );
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** Where processes send spans: `OTEL_EXPORTER_ZIPKIN_ENDPOINT`. */
  get spansUrl(): string {
    return `http://127.0.0.1:${this.port}/api/v2/spans`;
  }

  async #healthy(): Promise<boolean> {
    try {
      return (await fetch(`http://127.0.0.1:${this.port}/health`, { signal: AbortSignal.timeout(1_000) })).ok;
    } catch {
      return false;
    }
  }

  /** The spans of one trace (empty when Zipkin has none of it). */
  async trace(traceId: string): Promise<ZipkinSpan[]> {
    const response = await fetch(`http://127.0.0.1:${this.port}/api/v2/trace/${traceId}`);
    if (response.status === 404) return [];
    if (!response.ok) throw new Error(`Zipkin answered ${response.status} for trace ${traceId}`);
    return (await response.json()) as ZipkinSpan[];
  }

  /** The traces with a span tagged `tag=value` (Zipkin's annotationQuery). */
  async tracesTagged(tag: string, value: string): Promise<ZipkinSpan[][]> {
    const query = new URLSearchParams({ annotationQuery: `${tag}=${value}`, limit: '10', lookback: String(3_600_000) });
    const response = await fetch(`http://127.0.0.1:${this.port}/api/v2/traces?${query}`);
    if (!response.ok) throw new Error(`Zipkin answered ${response.status} for ${tag}=${value}`);
    return (await response.json()) as ZipkinSpan[][];
  }

  async close(): Promise<void> {
    process.off('exit', this.#killOnExit);
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
