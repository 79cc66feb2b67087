/**
 * The start-up wait of the scratch servers tests run as child processes (redis-server.ts,
 * postgres-server.ts): poll until the server answers, fail at once if it exits first.
 */
import type { ChildProcess } from 'node:child_process';

/**
 * Resolves once `answers()` says yes; rejects when `child` fails to spawn or exits before that
 * (with `detail()`, its log, in the message), or after `timeoutMs`.
 */
export async function untilAnswering(child: ChildProcess, what: string, answers: () => Promise<boolean>, timeoutMs: number, detail: () => string = () => ''): Promise<void> {
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`${what} could not start: ${error.message}`)));
    child.once('exit', (code, signal) => reject(new Error(`${what} exited (${code ?? signal}) before it was ready: ${detail()}`)));
  });
  exited.catch(() => undefined);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.race([answers(), exited])) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs} ms: ${detail()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
