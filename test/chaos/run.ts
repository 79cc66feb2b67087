/**
 * `npm run chaos`: the chaos suite (test/chaos/chaos.ts) in its long form, or `-- --short` for the
 * form `npm test` runs. Prints the report, writes it as JSON under bench/results/, and exits 1 when
 * a check failed (2 for a usage error).
 *
 *   npm run chaos [-- --short] [--rounds N] [--customers N] [--stall-ms MS] [--stall SERVICE] [--only FAULT,...]
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, SERVICE_NAMES, type ServiceName } from '@swiftcart/platform';
import { FAULTS, type FaultName, LONG_FORM, SHORT_FORM, formatReport, runChaos } from './chaos.ts';

function usage(message: string): never {
  console.error(
    `chaos: ${message}\nusage: npm run chaos [-- --short] [--rounds N] [--customers N] [--stall-ms MS] [--stall SERVICE] [--only FAULT,...]\nfaults: ${FAULTS.join(', ')}`,
  );
  process.exit(2);
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer, got "${value}"`);
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      short: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      customers: { type: 'string' },
      'stall-ms': { type: 'string' },
      stall: { type: 'string' },
      only: { type: 'string' },
    },
    strict: true,
  }).values;
} catch (error) {
  usage((error as Error).message);
}
const form = args.short ? SHORT_FORM : LONG_FORM;
const stallTarget = (args.stall ?? form.stallTarget) as ServiceName;
if (!SERVICE_NAMES.includes(stallTarget)) usage(`--stall must be one of ${SERVICE_NAMES.join(', ')}, got "${args.stall}"`);
const only = args.only
  ?.split(',')
  .map((f) => f.trim())
  .filter(Boolean);
for (const fault of only ?? []) if (!FAULTS.includes(fault as FaultName)) usage(`unknown fault "${fault}"`);

// Interrupted (Ctrl-C, a CI timeout): the scratch servers and the platform's processes are stopped, not orphaned.
const interrupted = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => interrupted.abort(new Error(`interrupted by ${signal}`)));
}
const report = await runChaos({
  ...form,
  rounds: positive('rounds', args.rounds, form.rounds),
  customers: positive('customers', args.customers, form.customers),
  stallMs: positive('stall-ms', args['stall-ms'], form.stallMs),
  stallTarget,
  faults: (only as FaultName[] | undefined) ?? form.faults,
  log: (line) => console.log(`[chaos] ${line}`),
  signal: interrupted.signal,
}).catch((error: unknown) => {
  if (!interrupted.signal.aborted) throw error;
  console.error(`[chaos] ${(error as Error).message}; everything it started is stopped`);
  process.exit(130);
});
console.log(formatReport(report));
const dir = path.join(REPO_ROOT, 'bench', 'results');
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, `chaos-${args.short ? 'short' : 'long'}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
fs.writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
console.log(`[chaos] report written to ${path.relative(REPO_ROOT, file)}`);
process.exit(report.failures.length ? 1 : 0);
