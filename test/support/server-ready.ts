/**
 * The start-up wait of the scratch servers tests run as child processes (redis-server.ts,
 * postgres-server.ts): poll until the server answers, fail at once if it exits first.
 */
import type { ChildProcess } from 'node:child_process';
import { fatal, waitFor } from './wait.ts';

/**
 * Resolves once `answers()` says yes; rejects when `child` fails to spawn or exits before that
 * (with `detail()`, its log, in the message), or after `timeoutMs`.
 */
export async function untilAnswering(
  child: ChildProcess,
  what: string,
  answers: () => Promise<boolean>,
  timeoutMs: number,
  detail: () => string = () => '',
): Promise<void> {
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(fatal(`${what} could not start: ${error.message}`)));
    child.once('exit', (code, signal) => reject(fatal(`${what} exited (${code ?? signal}) before it was ready: ${detail()}`)));
  });
  exited.catch(() => undefined);
  // An answer that hangs (a server half up) loses the race to the exit.
  await waitFor(() => Promise.race([answers(), exited]), `${what} to answer`, timeoutMs, detail, 20);
}
