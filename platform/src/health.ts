import { withTimeout } from './resilience.ts';

/** A named dependency probe; it rejects when the dependency does not answer. */
export type HealthCheck = () => Promise<void>;

/** The outcome of one readiness run, as `/readyz` returns it. */
export interface ReadinessReport {
  readonly status: 'ready' | 'unavailable';
  readonly checks: Record<string, { readonly ok: boolean; readonly ms: number; readonly error?: string }>;
}

/** Runs every check in parallel, each bounded by `timeoutMs`, and reports all of them. */
export async function checkReadiness(checks: Readonly<Record<string, HealthCheck>>, timeoutMs: number): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const started = performance.now();
      try {
        await withTimeout(check(), timeoutMs, `no answer within ${timeoutMs} ms`);
        return [name, { ok: true, ms: Math.round(performance.now() - started) }] as const;
      } catch (error) {
        return [name, { ok: false, ms: Math.round(performance.now() - started), error: (error as Error).message }] as const;
      }
    }),
  );
  const report = Object.fromEntries(entries);
  return { status: entries.every(([, r]) => r.ok) ? 'ready' : 'unavailable', checks: report };
}
