/**
 * Operating the analytics service's figures (docs/analytics.md, ADR 0023):
 *
 *   npm run analytics -- rebuild [--allow-truncated]
 *   npm run analytics -- status [--json]
 *   npm run analytics -- abandon
 *
 * `rebuild` recounts the figures from the beginning of the order and payment topics into a new
 * generation, with a new consumer group, while the service keeps counting and answering, and swaps
 * it in; run again after a stop, it resumes. `status` lists the generations; `abandon` drops an
 * unfinished rebuild; `--help` prints the usage. Exit codes: 0 done, 1 failed or refused (a bad
 * setting or an unreachable database included), 2 bad arguments, 130 stopped (Ctrl-C).
 */
import { type Config, type OpenRuntime, createLogger, isMain, loadConfig, openRuntime } from '@swiftcart/platform';
import { analyticsService } from '../subgraphs/analytics/src/service.ts';
import { RebuildRefused, abandonRebuild, generationStatus, rebuild } from '../subgraphs/analytics/src/generations.ts';

const USAGE = `usage: npm run analytics -- <command> [options]

commands:
  rebuild [--allow-truncated]  recount the sales figures from the beginning of order.events.v1 and
                               payment.events.v1 into a new generation (consumer group
                               analytics.rebuild.<generation>) while the service keeps running, then
                               swap it in; resumes a rebuild that was stopped. --allow-truncated
                               rebuilds even when retention has deleted the topics' first events
                               (the figures then miss them)
  status [--json]              the generations of the figures: state, events counted, buckets
  abandon                      drop an unfinished rebuild: its generation is retired, its rows deleted

environment: the analytics service's (DATABASE_URL, DB_PREFIX, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX,
REDIS_URL, REDIS_PREFIX; see the README's configuration tables)`;

/** Where the command writes, and the configuration it runs with; tests pass their own. */
export interface AnalyticsIo {
  readonly config?: Config;
  readonly out?: (line: string) => void;
  readonly err?: (line: string) => void;
  /** Aborts a rebuild (the command line wires Ctrl-C to it). */
  readonly signal?: AbortSignal;
}

class UsageError extends Error {}

type Command =
  | { readonly name: 'rebuild'; readonly allowTruncated: boolean }
  | { readonly name: 'status'; readonly json: boolean }
  | { readonly name: 'abandon' };

function parse(argv: readonly string[]): Command {
  const [name, ...rest] = argv;
  const flags = new Set(rest);
  const allowed: Record<string, readonly string[]> = { rebuild: ['--allow-truncated'], status: ['--json'], abandon: [] };
  if (name === undefined) throw new UsageError('no command given');
  if (!Object.hasOwn(allowed, name)) throw new UsageError(`unknown command: ${name}`);
  for (const flag of rest) if (!allowed[name].includes(flag)) throw new UsageError(`unexpected argument for ${name}: ${flag}`);
  if (flags.size !== rest.length) throw new UsageError(`an option is given twice: ${rest.join(' ')}`);
  if (name === 'rebuild') return { name, allowTruncated: flags.has('--allow-truncated') };
  if (name === 'status') return { name, json: flags.has('--json') };
  return { name: 'abandon' };
}

/** An error as one line: a connection refused on every address has only its inner errors' messages. */
function describe(error: unknown): string {
  const message =
    error instanceof AggregateError && !error.message
      ? error.errors.map((inner) => (inner instanceof Error ? inner.message : String(inner))).join('; ')
      : error instanceof Error
        ? error.message
        : String(error);
  return message.replaceAll(/\s*\n\s*/g, ' ') || String(error);
}

/** Runs a parsed command against the opened analytics runtime; resolves with the exit code. */
async function run(command: Command, runtime: OpenRuntime['runtime'], out: (line: string) => void, signal: AbortSignal | undefined): Promise<number> {
  switch (command.name) {
    case 'status': {
      const generations = await generationStatus(runtime);
      if (command.json) for (const g of generations) out(JSON.stringify(g));
      else {
        out('generation  state      events      buckets  since');
        for (const g of generations) {
          out(`${String(g.id).padStart(10)}  ${g.state.padEnd(9)}  ${String(g.events).padStart(10)}  ${String(g.buckets).padStart(7)}  ${g.updatedAt}`);
        }
      }
      return 0;
    }
    case 'abandon': {
      const abandoned = await abandonRebuild(runtime);
      out(abandoned === null ? 'no rebuild to abandon' : `abandoned the rebuild of generation ${abandoned}; its rows are deleted`);
      return 0;
    }
    case 'rebuild': {
      const result = await rebuild(runtime, { allowTruncated: command.allowTruncated, signal, onProgress: (message) => out(message) });
      out(
        `done in ${(result.durationMs / 1000).toFixed(1)} s: generation ${result.generation} is CURRENT with ${result.events} events` +
          (result.retired === null ? '' : `; generation ${result.retired} retired`) +
          (result.changedBuckets > 0 ? `; ${result.changedBuckets} buckets changed and were announced` : '; every bucket is as it was'),
      );
      return 0;
    }
  }
}

/** Runs one command; resolves with the process's exit code (0 also for --help, -h and help). */
export async function main(argv: readonly string[], io: AnalyticsIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  if (argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    out(USAGE);
    return 0;
  }
  let command: Command;
  try {
    command = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`analytics: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  let opened: OpenRuntime | undefined;
  try {
    // Inside the try: a bad setting or an unreachable database is reported like any other failure.
    const config = io.config ?? loadConfig();
    // The command prints its own progress; the service's log lines only at a LOG_LEVEL asked for.
    opened = await openRuntime(analyticsService, { config, log: createLogger('analytics', process.env.LOG_LEVEL ?? 'error') });
    return await run(command, opened.runtime, out, io.signal);
  } catch (error) {
    if (io.signal?.aborted) {
      err('analytics: rebuild stopped; `npm run analytics -- rebuild` resumes it, `npm run analytics -- abandon` drops it');
      return 130;
    }
    err(`analytics: ${command.name} ${error instanceof RebuildRefused ? 'refused' : 'failed'}: ${describe(error)}`);
    return 1;
  } finally {
    await opened?.close();
  }
}

if (isMain(import.meta.url)) {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort(new Error('interrupted')));
  process.exitCode = await main(process.argv.slice(2), { signal: stop.signal });
}
