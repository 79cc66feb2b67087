/**
 * Crash points: places where a test may make a service process die, as a power cut would, to prove
 * that nothing is lost there. Only in `NODE_ENV=test`, and only in a process of its own (the test
 * runner would die with an in-process service).
 */
import type { Config } from './config.ts';

/** The crash points the code has. */
export const CRASH_POINTS = ['after-commit', 'handling'] as const;

/**
 * One of {@link CRASH_POINTS}: `after-commit` is after a change committed and before this process
 * announced it; `handling:<event id>` is a consumer about to apply that event (a poison message).
 */
export type CrashPoint = (typeof CRASH_POINTS)[number];

/** The setting that names the crash point a test process dies at. */
export const TEST_CRASH_AT = 'TEST_CRASH_AT';

/**
 * Kills this process with SIGKILL (no shutdown hook, no flush) when the configuration is a test's
 * and `TEST_CRASH_AT` names `point` (`point:key` when a key is given); otherwise does nothing.
 */
export function crashPoint(config: Pick<Config, 'env' | 'vars'>, point: CrashPoint, key?: string): void {
  if (config.env !== 'test' || config.vars[TEST_CRASH_AT] !== (key === undefined ? point : `${point}:${key}`)) return;
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL to oneself is not deferred, but nothing after this line may ever run.
  throw new Error(`crash point ${point}`);
}
