/**
 * A PostgreSQL server of a test's own: `initdb` into a temporary directory and `postgres` as a child
 * process on a free port (trust auth, user postgres), that a test may crash and start again to see
 * how the platform lives through a database restart. The shared server on 5432 is never touched.
 *
 * ```ts
 * await using pg = await TestPostgresServer.start();
 * const config = isolatedConfig({ DATABASE_URL: pg.url });
 * await pg.restart();   // immediate shutdown (crash recovery at start), same port, same data
 * ```
 *
 * PostgreSQL refuses to run as root: when the test runs as root, `initdb` and `postgres` run as the
 * `postgres` user of the machine (Debian's packages create it).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../scripts/infra.ts';
import { untilAnswering } from './server-ready.ts';

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** The directory of `initdb` and `postgres`: PG_BIN, else the newest /usr/lib/postgresql/<v>/bin, else PATH. */
function binDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  try {
    const versions = fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const dir = path.join('/usr/lib/postgresql', version, 'bin');
      if (fs.existsSync(path.join(dir, 'postgres'))) return dir;
    }
  } catch {
    // not a Debian layout: rely on PATH
  }
  return '';
}

/** The uid and gid to run PostgreSQL as: the `postgres` user when this process is root, else this process's own. */
function runAs(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** One scratch PostgreSQL; dispose it (`await using`) to stop it and delete its files. */
export class TestPostgresServer implements AsyncDisposable {
  /** The port it listens on, the same across restarts. */
  readonly port: number;
  readonly #home: string;
  readonly #bin: string;
  readonly #user: { uid?: number; gid?: number };
  #child: ChildProcess | null = null;
  #killOnExit = () => this.#child?.kill('SIGKILL');

  private constructor(port: number, home: string) {
    this.port = port;
    this.#home = home;
    this.#bin = binDir();
    this.#user = runAs();
  }

  /** Creates a cluster in a temporary directory, starts it and resolves once it answers a query. */
  static async start(): Promise<TestPostgresServer> {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'swiftcart-pg-'));
    const server = new TestPostgresServer(await freePort(), home);
    try {
      if (server.#user.uid !== undefined) fs.chownSync(home, server.#user.uid, server.#user.gid!);
      execFileSync(path.join(server.#bin, 'initdb'), ['-D', server.#data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'], {
        stdio: ['ignore', 'ignore', 'pipe'],
        ...server.#user,
      });
      await server.startProcess();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  get #data(): string {
    return path.join(this.#home, 'data');
  }

  /** The server's log (every start appends to it); deleted with the server unless SWIFTCART_KEEP_SCRATCH is set. */
  get logFile(): string {
    return path.join(this.#home, 'postgres.log');
  }

  /** The last lines of the server's log, for error messages. */
  logTail(lines = 20): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** `postgresql://postgres@127.0.0.1:<port>`, for DATABASE_URL. */
  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}`;
  }

  /** Starts the server (a no-op while it runs) and resolves once it answers `select 1`. */
  async startProcess(): Promise<void> {
    if (this.#child) return;
    const logFd = fs.openSync(this.logFile, 'a');
    const child = spawn(
      path.join(this.#bin, 'postgres'),
      [
        '-D',
        this.#data,
        '-p',
        String(this.port),
        '-k',
        this.#home,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'max_connections=400',
        // A scratch cluster for crash tests of the platform, not of the disk: the OS keeps what was written.
        '-c',
        'fsync=off',
        '-c',
        'full_page_writes=off',
      ],
      { stdio: ['ignore', logFd, logFd], ...this.#user },
    );
    fs.closeSync(logFd);
    this.#child = child;
    process.once('exit', this.#killOnExit);
    try {
      await untilAnswering(
        child,
        `postgres on port ${this.port}`,
        () => this.#answers(),
        READY_TIMEOUT_MS,
        () => this.logTail(),
      );
    } catch (error) {
      await this.stop('SIGKILL');
      throw error;
    }
  }

  async #answers(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * Stops the server and resolves once it has exited. SIGQUIT (the default) is PostgreSQL's
   * immediate shutdown: every connection is cut and the next start runs crash recovery. SIGINT is a
   * fast, clean shutdown; SIGKILL leaves its shared memory behind for the next start to clean up.
   */
  async stop(signal: 'SIGQUIT' | 'SIGINT' | 'SIGKILL' = 'SIGQUIT'): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    process.off('exit', this.#killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await gone;
    clearTimeout(timer);
  }

  /** Crashes the server (immediate shutdown) and starts it again on the same port with the same data. */
  async restart(): Promise<void> {
    await this.stop('SIGQUIT');
    await this.startProcess();
  }

  async close(): Promise<void> {
    await this.stop('SIGINT');
    if (!process.env.SWIFTCART_KEEP_SCRATCH) fs.rmSync(this.#home, { recursive: true, force: true });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
