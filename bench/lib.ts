/**
 * Shared benchmark machinery: a keep-alive load generator in a child process (so the client's CPU
 * is not the server's), latency percentiles, tables and result files. Benchmarks measure and
 * print; they are not tests and never fail on a figure.
 */
import { execFile, execFileSync, fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where result files go: `bench/results/<name>-<timestamp>.json` and `<name>-latest.json`. */
export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

/** One HTTP endpoint to load, and what every successful response must look like. */
export interface LoadTarget {
  readonly name: string;
  readonly url: string;
  /** The JSON body POSTed on every request (the first of `bodies`, when given). */
  readonly body: unknown;
  /** Bodies that the requests cycle through, so that requests in flight together differ; default `[body]`. */
  readonly bodies?: readonly unknown[];
  readonly headers?: Readonly<Record<string, string>>;
  /** A response counts as an error unless it is HTTP 200, JSON without `errors`, and this holds. */
  readonly expect?: { readonly path: readonly string[]; readonly length?: number };
}

/** What one load run measured. */
export interface LoadRun {
  readonly target: string;
  readonly requests: number;
  readonly errors: number;
  /** Up to five distinct error descriptions. */
  readonly errorSamples: readonly string[];
  readonly elapsedMs: number;
  /** Per-request latencies in ms (empty for unrecorded warm-up runs). */
  readonly latenciesMs: Float64Array;
}

/** Summary statistics of one or more runs against the same target. */
export interface LoadSummary {
  readonly target: string;
  readonly requests: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly mean: number; readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
}

/** The p-th percentile (0..100) of ascending `sorted` values, by nearest rank. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Merges runs against one target into a summary. */
export function summarize(runs: readonly LoadRun[]): LoadSummary {
  if (runs.length === 0) throw new Error('summarize needs at least one run');
  const total = runs.reduce((n, r) => n + r.latenciesMs.length, 0);
  const all = new Float64Array(total);
  let offset = 0;
  for (const run of runs) {
    all.set(run.latenciesMs, offset);
    offset += run.latenciesMs.length;
  }
  all.sort();
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const elapsedMs = runs.reduce((n, r) => n + r.elapsedMs, 0);
  const sum = all.reduce((a, b) => a + b, 0);
  return {
    target: runs[0].target,
    requests,
    errors: runs.reduce((n, r) => n + r.errors, 0),
    errorSamples: [...new Set(runs.flatMap((r) => r.errorSamples))].slice(0, 5),
    seconds: elapsedMs / 1000,
    requestsPerSecond: requests / (elapsedMs / 1000),
    latencyMs: {
      mean: total ? sum / total : Number.NaN,
      p50: percentile(all, 50),
      p90: percentile(all, 90),
      p99: percentile(all, 99),
      max: total ? all[total - 1] : Number.NaN,
    },
  };
}

/** Messages between {@link LoadGenerator} and bench/load-worker.ts. */
export type WorkerRequest =
  | {
      readonly type: 'run';
      readonly id: number;
      readonly target: LoadTarget;
      readonly concurrency: number;
      readonly durationMs: number;
      readonly record: boolean;
    }
  | { readonly type: 'exit' };
export type WorkerReply =
  | { readonly type: 'ready' }
  | { readonly type: 'result'; readonly id: number; readonly run: LoadRun }
  | { readonly type: 'failed'; readonly id: number; readonly error: string };

/**
 * A load generator in its own Node process. It keeps one keep-alive socket pool per target
 * between runs, so rounds against the same target reuse warm connections.
 */
export class LoadGenerator implements AsyncDisposable {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (run: LoadRun) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on('message', (message: WorkerReply) => {
      if (message.type === 'ready') return;
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.type === 'result') pending.resolve(message.run);
      else pending.reject(new Error(`load worker: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      this.#exited = true;
      for (const { reject } of this.#pending.values()) reject(new Error(`load worker exited (${signal ?? code})`));
      this.#pending.clear();
    });
  }

  /**
   * Starts the worker process and waits until it can take runs. `worker` names another worker
   * module speaking the same {@link WorkerRequest} protocol (default bench/load-worker.ts).
   */
  static async start(): Promise<LoadGenerator> {
    const child = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-worker.ts'), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the load worker did not start within 10 s')), 10_000);
      child.once('message', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the load worker exited during start-up (${code})`));
      });
    });
    return new LoadGenerator(child);
  }

  /** The worker's process id (for its CPU time); undefined once it has exited. */
  get pid(): number | undefined {
    return this.#exited ? undefined : this.#child.pid;
  }

  /** Drives `target` with `concurrency` requests in flight for `durationMs`. */
  run(target: LoadTarget, options: { concurrency: number; durationMs: number; record?: boolean }): Promise<LoadRun> {
    if (this.#exited) return Promise.reject(new Error('the load worker has exited'));
    const id = this.#nextId++;
    return new Promise<LoadRun>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: WorkerRequest = {
        type: 'run',
        id,
        target,
        concurrency: options.concurrency,
        durationMs: options.durationMs,
        record: options.record ?? true,
      };
      this.#child.send(request);
    });
  }

  async close(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.send({ type: 'exit' } satisfies WorkerRequest);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** GETs JSON with a timeout; rejects on a network error, a timeout or a non-JSON body. */
export async function getJson<T = any>(url: string, timeoutMs = 3_000): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: response.status, body: (await response.json()) as T };
}

/** Formats rows as an aligned text table; the first row is the header. */
/**
 * Pins process `pid` and all its threads to `core` with taskset (util-linux); false when taskset
 * is missing or refuses. Processes it starts afterwards inherit the pinning.
 */
export function pinToCore(pid: number, core: number): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: readonly string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

/** Writes `<name>-<timestamp>.json` and `<name>-latest.json` under bench/results; returns both paths. */
export async function writeResults(name: string, result: unknown, at = new Date()): Promise<{ file: string; latest: string }> {
  await mkdir(RESULTS_DIR, { recursive: true });
  // ':' is not allowed in Windows file names; the timestamp stays ISO-8601 apart from that.
  const stamp = at.toISOString().replace(/:/g, '-');
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const file = path.join(RESULTS_DIR, `${name}-${stamp}.json`);
  const latest = path.join(RESULTS_DIR, `${name}-latest.json`);
  await writeFile(file, text);
  await writeFile(latest, text);
  return { file, latest };
}

/** Rounds for display: 1234.5678 → "1234.6"; NaN → "-". */
export function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

/** Bytes as MiB for display. */
export function mib(bytes: number | null | undefined): string {
  return typeof bytes === 'number' && Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(1) : '-';
}

/** Thrown for bad command-line arguments; `run.ts` prints usage and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Walks `--flag value` and `--flag=value` arguments, handing each flag to `handle` with a reader
 * for its value; a flag given without its value is a UsageError.
 */
export function forEachFlag(args: readonly string[], handle: (name: string, value: () => string) => void): void {
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const [name, inline] = flag.includes('=') ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)] : [flag, undefined];
    handle(name, () => {
      const v = inline ?? args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    });
  }
}

/** One POST over a keep-alive agent, resolving with the status and body (30 s timeout); used by the load workers. */
export function post(url: URL, agent: http.Agent, body: Buffer, headers: Record<string, string | number>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, method: 'POST', hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no response within 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Checks a URL option; a UsageError names the flag otherwise. */
export function urlOption(value: string, flag: string): string {
  try {
    new URL(value);
  } catch {
    throw new UsageError(`${flag} must be a URL, got "${value}"`);
  }
  return value;
}

/** Thrown when the stack is not in a state to benchmark; the message says what to do. */
export class NotReady extends Error {}

/** Reads a positive number from a `--flag value` argument. */
export function positiveNumber(flag: string, raw: string | undefined, { integer = false, max = Number.MAX_SAFE_INTEGER } = {}): number {
  const value = Number(raw);
  if (raw === undefined || raw === '' || !Number.isFinite(value) || value <= 0 || value > max || (integer && !Number.isInteger(value))) {
    throw new UsageError(
      `${flag} must be a positive ${integer ? 'integer' : 'number'}${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}, got "${raw ?? ''}"`,
    );
  }
  return value;
}

/** A timer that ends the process if a benchmark hangs, after running `cleanup`. */
export function watchdog(ms: number, cleanup: () => void): { clear(): void } {
  const timer = setTimeout(() => {
    console.error(`bench: no result after ${Math.round(ms / 1000)} s; stopping`);
    try {
      cleanup();
    } finally {
      process.exit(1);
    }
  }, ms);
  timer.unref();
  return { clear: () => clearTimeout(timer) };
}

/** Resident memory and CPU time of one process, from /proc/<pid> (Linux); null where unreadable. */
export interface ProcStats {
  readonly pid: number;
  /** VmRSS. */
  readonly rssBytes: number | null;
  /** VmHWM: the process's resident high-water mark since it started. */
  readonly peakRssBytes: number | null;
  /** User + system CPU time since the process started, seconds. */
  readonly cpuSeconds: number | null;
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks. */
let clockTicks: Promise<number> | undefined;

/** Reads {@link ProcStats} of `pid` from /proc/<pid>/status and /proc/<pid>/stat. */
export async function procStats(pid: number): Promise<ProcStats> {
  clockTicks ??= new Promise((resolve) => execFile('getconf', ['CLK_TCK'], (error, stdout) => resolve(error ? 100 : Number(stdout.trim()) || 100)));
  const [status, stat, ticks] = await Promise.all([
    readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''),
    readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
    clockTicks,
  ]);
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const kib = (key: string) => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) * 1024 : null;
  };
  return { pid, rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM'), cpuSeconds: fields.length > 12 ? (Number(fields[11]) + Number(fields[12])) / ticks : null };
}

export { freePort } from '../scripts/infra.ts';

/** Count, mean and percentiles of a set of values (NaN when empty). */
export interface Distribution {
  readonly count: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
}

/** The {@link Distribution} of `values`; sorts a copy. */
export function distribution(values: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    count: n,
    mean: n ? sum / n : Number.NaN,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: n ? sorted[n - 1] : Number.NaN,
  };
}
