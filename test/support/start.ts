/**
 * `npm start` as a person runs it, for tests: scripts/start.ts as a child process in its own process
 * group (so Ctrl-C can be sent to all of it, and a failed test kills all of it), on ports,
 * databases, Redis keys, topics, a log folder and a mail sink of its own, without the storefront,
 * Zipkin and Prometheus. What it prints (stdout and stderr) is collected for assertions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, SERVICE_NAMES, loadConfig } from '@swiftcart/platform';
import { dropDatabases, freePort } from '../../scripts/infra.ts';
import { clearRedisPrefix } from './stack.ts';
import { fatal, waitFor } from './wait.ts';

/** A running `npm start` of a test. */
export interface StartedPlatform extends AsyncDisposable {
  /** The run's id, in its database prefix (`swiftcart_s<id>`), Redis prefix and topic prefix. */
  readonly id: string;
  /** The environment it was started with (ports, prefixes, LOG_DIR, ...). */
  readonly env: NodeJS.ProcessEnv;
  readonly process: ChildProcess;
  readonly gatewayUrl: string;
  /** Its log folder (LOG_DIR): one `<name>.log` per process. */
  readonly logDir: string;
  readonly maildevSmtpPort: number;
  readonly maildevWebPort: number;
  /** Everything printed so far. */
  readonly output: () => string;
  /** Resolves with the match once the output matches `pattern`; fails if it exits first or after `timeoutMs`. */
  printed(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** How it exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Kills what still runs (SIGKILL to the group), drops its databases and Redis keys, removes its logs. */
  close(): Promise<void>;
}

/** Starts `npm start` (`scripts/start.ts --no-storefront --no-zipkin --no-prometheus`) with `env` on top of its own. */
export async function startPlatform(env: NodeJS.ProcessEnv = {}): Promise<StartedPlatform> {
  const id = randomBytes(4).toString('hex');
  const logDir = mkdtempSync(path.join(tmpdir(), 'swiftcart-start-'));
  const ports = await Promise.all([...SERVICE_NAMES, 'gateway', 'maildev-smtp', 'maildev-web'].map(() => freePort()));
  const [maildevSmtpPort, maildevWebPort] = ports.slice(SERVICE_NAMES.length + 1);
  const runEnv: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    GATEWAY_PORT: String(ports[SERVICE_NAMES.length]),
    ...Object.fromEntries(SERVICE_NAMES.map((name, i) => [`${name.toUpperCase()}_PORT`, String(ports[i])])),
    DB_PREFIX: `swiftcart_s${id}`,
    REDIS_PREFIX: `swiftcart-test:${id}:`,
    KAFKA_TOPIC_PREFIX: `test.${id}.`,
    LOG_DIR: logDir,
    // Its own mail sink, away from a developer's `npm start` on 1025 and 1080.
    MAILDEV_SMTP_PORT: String(maildevSmtpPort),
    MAILDEV_WEB_PORT: String(maildevWebPort),
  };
  delete runEnv.NOTIFICATION_SMTP_URL;
  // Whatever the runner's environment routes elsewhere must not leak into this platform.
  for (const name of SERVICE_NAMES) delete runEnv[`${name.toUpperCase()}_URL`];
  delete runEnv.SUBGRAPH_SECRET;
  Object.assign(runEnv, env);

  const child = spawn(process.execPath, ['scripts/start.ts', '--no-storefront', '--no-zipkin', '--no-prometheus'], {
    cwd: REPO_ROOT,
    env: runEnv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      if (child.pid && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        await exited;
      }
      const config = loadConfig(runEnv);
      await dropDatabases(config);
      await clearRedisPrefix(config);
      rmSync(logDir, { recursive: true, force: true });
    })());

  return {
    id,
    env: runEnv,
    process: child,
    gatewayUrl: `http://127.0.0.1:${ports[SERVICE_NAMES.length]}/graphql`,
    logDir,
    maildevSmtpPort,
    maildevWebPort,
    output: () => output,
    printed: (pattern, timeoutMs) =>
      waitFor(
        () => {
          const match = pattern.exec(output);
          if (match) return match;
          if (child.exitCode !== null || child.signalCode !== null) throw fatal(`npm start exited before printing ${pattern}:\n${output}`);
          return undefined;
        },
        `npm start to print ${pattern}`,
        timeoutMs,
        () => `\n${output}`,
        100,
      ),
    exited,
    close,
    [Symbol.asyncDispose]: close,
  };
}
