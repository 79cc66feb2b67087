/**
 * `npm run bench -- <name> [options]`: runs one benchmark, prints its figures and writes them to
 * bench/results/<name>-<timestamp>.json and <name>-latest.json.
 */
import { UsageError } from './lib.ts';

/** Each benchmark: a one-line description, its usage text and its entry point (exit code). */
const BENCHES: Record<string, { description: string; load: () => Promise<{ main(args: readonly string[]): Promise<number>; USAGE: string }> }> = {
  analytics: {
    description: 'how far the sales figures trail the saga at its highest rate: occurredAt → counted, and the analytics consumer lag',
    load: () => import('./analytics.ts'),
  },
  cart: { description: 'myCart with 20 lines (product, price, stock, warnings) through our gateway, at a few concurrencies', load: () => import('./cart.ts') },
  gateway: {
    description: 'gateway-bound: ours, a plain ApolloGateway and Hive Gateway over replayed subgraphs (--stack: over the running stack)',
    load: () => import('./gateway.ts'),
  },
  'trusted-documents': {
    description: 'what trusted documents save per request: bytes by id against the document, parse and validate time, the check',
    load: () => import('./trusted-documents.ts'),
  },
  live: { description: 'live stock subscriptions: N graphql-ws clients at a fixed change rate, ours vs Hive Gateway', load: () => import('./live.ts') },
  saga: {
    description:
      'the order saga end to end: closed-loop customers (default), a capacity search (--search) or an overload run (--overload); drain, stock conservation',
    load: () => import('./saga.ts'),
  },
};

function usage(): string {
  return `usage: npm run bench -- <benchmark> [options]   (npm run bench -- <benchmark> --help for its options)\n\n${Object.entries(BENCHES)
    .map(([name, b]) => `  ${name.padEnd(10)} ${b.description}`)
    .join('\n')}`;
}

const [name, ...args] = process.argv.slice(2);
const bench = name === undefined ? undefined : BENCHES[name];
if (!bench) {
  console.error(`${name === undefined ? 'bench: name a benchmark' : `bench: unknown benchmark "${name}"`}\n\n${usage()}`);
  process.exit(2);
}
const module = await bench.load();
if (args.includes('--help') || args.includes('-h')) {
  console.log(module.USAGE);
  process.exit(0);
}
try {
  process.exit(await module.main(args));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`bench ${name}: ${error.message}\n\n${module.USAGE}`);
    process.exit(2);
  }
  console.error(`bench ${name} failed:`, error);
  process.exit(1);
}
