/**
 * Waiting in tests: on a condition, never on a clock. {@link waitFor} polls until something is true
 * (and fails naming what it waited for); "nothing else happens" is {@link drain} in ./drain.ts, then
 * an assertion. A fixed sleep is left only where time itself is the subject and the code has no clock
 * to inject (docs/operations.md, "Tests").
 */

/** What a probe returns while the condition does not hold yet. */
export type NotYet = undefined | null | false;

/**
 * Polls `probe` every `intervalMs` until it returns something other than undefined, null or false,
 * and resolves with that. A probe that throws is polled again (the last error is in the failure
 * message), unless the error has `fatal: true`, which ends the wait at once. After `timeoutMs` it
 * rejects, naming `what` and, when given, what `describe()` says was last seen.
 */
export async function waitFor<T>(
  probe: () => T | NotYet | Promise<T | NotYet>,
  what: string,
  timeoutMs = 15_000,
  describe?: () => unknown,
  intervalMs = 50,
): Promise<Exclude<T, NotYet>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value as Exclude<T, NotYet>;
      lastError = undefined;
    } catch (error) {
      if ((error as { fatal?: boolean } | null)?.fatal) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      let detail = '';
      if (describe) {
        const seen = await Promise.resolve()
          .then(describe)
          .catch((error: unknown) => `(describe failed: ${(error as Error).message})`);
        if (seen !== undefined) detail = `; last seen: ${typeof seen === 'string' ? seen : JSON.stringify(seen)}`;
      }
      const error = lastError ? `; last error: ${(lastError as Error).message ?? String(lastError)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}${error}`, lastError ? { cause: lastError } : undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(intervalMs, deadline - Date.now()))));
  }
}

/** An error that ends a {@link waitFor} at once instead of being polled again (a process that exited). */
export function fatal(message: string): Error & { fatal: true } {
  return Object.assign(new Error(message), { fatal: true as const });
}
