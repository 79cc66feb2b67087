/**
 * `npm run bench -- gateway`: gateway-bound by default (bench/federation/bench.ts: our gateway,
 * a plain ApolloGateway and Hive Gateway pinned alone to one core over replayed subgraphs).
 *
 * `npm run bench -- gateway --stack`: what a user sees end to end, three gateways over the running
 * `npm start` stack's subgraphs and the same supergraph, each a fresh process of its own:
 *
 * - `ours`: our gateway (gateway/src/main.ts) with every edge limit on: operation limits,
 *   the input guard, origins, and the Redis rate limits, raised out of the way so that they count
 *   every request but refuse none (the load is one client);
 * - `ours-off`: the same with `EDGE_LIMITS=off`, so `ours / ours-off` is what the limits cost;
 * - `plain`: a plain `ApolloServer` + `ApolloGateway` with default settings (bench/plain-gateway.ts).
 *
 * All get the same warm-up, then alternate rounds of the same query at the same concurrency from a
 * load generator in its own process. The subgraphs require the stack's SUBGRAPH_SECRET: the
 * environment's, or the one `npm start` recorded for its run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../platform/src/config.ts';
import { freePort, runSubgraphSecret } from '../scripts/infra.ts';
import {
  type LoadRun,
  type LoadSummary,
  type LoadTarget,
  LoadGenerator,
  NotReady,
  UsageError,
  fixed,
  forEachFlag,
  getJson,
  mib,
  positiveNumber,
  summarize,
  table,
  watchdog,
  writeResults,
} from './lib.ts';
import type { PlainGatewayMessage } from './plain-gateway.ts';
import { USAGE as REPLAY_USAGE, main as replayMain } from './federation/bench.ts';

/** The operations this bench can drive, and the subgraphs each needs. */
const QUERIES = {
  products: {
    description: 'products(first: 20) with price and stock (product + inventory)',
    query: 'query Products { products(first: 20) { edges { node { sku name price { amount currency } stock { available } } } } }',
    subgraphs: ['product', 'inventory'],
  },
  'product-only': {
    description: 'products(first: 20) with price, no stock (product only)',
    query: 'query Products { products(first: 20) { edges { node { sku name price { amount currency } } } } }',
    subgraphs: ['product'],
  },
} as const;
type QueryName = keyof typeof QUERIES;

const STACK_USAGE = `usage: npm run bench -- gateway --stack [--concurrency 32] [--duration 30] [--warmup 3] [--rounds 3]
                                        [--query ${Object.keys(QUERIES).join('|')}]

  --concurrency  requests in flight against each gateway (default 32)
  --duration     measured seconds per gateway, split into --rounds alternating rounds (default 30)
  --warmup       unmeasured seconds per gateway before the first round (default 3)
  --rounds       alternating rounds per gateway (default 3)
  --query        ${Object.entries(QUERIES)
    .map(([k, v]) => `${k}: ${v.description}`)
    .join('\n                 ')}

Needs the stack running (npm start): the subgraphs with the seed catalogue. Starts its own three
gateways beside it: ours with every edge limit on, ours with EDGE_LIMITS=off, and a plain one.`;

interface Options {
  concurrency: number;
  durationS: number;
  warmupS: number;
  rounds: number;
  query: QueryName;
}

function parseOptions(args: readonly string[]): Options {
  const options: Options = { concurrency: 32, durationS: 30, warmupS: 3, rounds: 3, query: 'products' };
  forEachFlag(args, (name, value) => {
    switch (name) {
      case '--concurrency':
        options.concurrency = positiveNumber(name, value(), { integer: true, max: 4096 });
        break;
      case '--duration':
        options.durationS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--warmup': {
        const v = value();
        options.warmupS = v === '0' ? 0 : positiveNumber(name, v, { max: 600 });
        break;
      }
      case '--rounds':
        options.rounds = positiveNumber(name, value(), { integer: true, max: 100 });
        break;
      case '--query': {
        const v = value();
        if (!(v in QUERIES)) throw new UsageError(`--query must be one of ${Object.keys(QUERIES).join(', ')}, got "${v}"`);
        options.query = v as QueryName;
        break;
      }
      default:
        throw new UsageError(`unknown option "${name}"`);
    }
  });
  return options;
}

interface ProcessStats {
  readonly pid: number | null;
  readonly rssBytes: number | null;
  readonly maxRssBytes: number | null;
  readonly cpuMicros: number | null;
}

/** A gateway under load: where to send requests, how to read its process's figures, how to stop it. */
interface BenchGateway {
  readonly url: string;
  readonly child: ChildProcess;
  stats(): Promise<ProcessStats>;
  stop(): Promise<void>;
}

/** Stops `child` with `ask`, then SIGKILL after 5 s. */
async function stopChild(child: ChildProcess, ask: () => void): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  ask();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Far above what one load generator sends: the limiter still counts every request in Redis. */
const OUT_OF_THE_WAY = '100000000';

/** A gateway in a child process of its own; each kind says how it is asked to stop. */
abstract class ChildGateway implements BenchGateway {
  readonly child: ChildProcess;
  readonly url: string;

  protected constructor(child: ChildProcess, url: string) {
    this.child = child;
    this.url = url;
  }

  abstract stats(): Promise<ProcessStats>;

  /** Asks the process to exit; {@link stop} kills it when it hasn't within 5 s. */
  protected abstract askToExit(): void;

  stop(): Promise<void> {
    return stopChild(this.child, () => this.askToExit());
  }
}

/** Our gateway (gateway/src/main.ts) in a process of its own, on a free port; also the cart bench's. */
export class OurGateway extends ChildGateway {
  static async start(edgeLimits: boolean, subgraphSecret: string): Promise<OurGateway> {
    const port = await freePort();
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'gateway', 'src', 'main.ts');
    // stdout stays open: a gateway that refuses its settings says why there, at level fatal.
    const child = fork(entry, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        GATEWAY_PORT: String(port),
        SUBGRAPH_SECRET: subgraphSecret,
        LOG_LEVEL: 'warn',
        APOLLO_TELEMETRY_DISABLED: 'true',
        EDGE_LIMITS: edgeLimits ? 'on' : 'off',
        RATE_LIMIT_HTTP_PER_WINDOW: OUT_OF_THE_WAY,
        RATE_LIMIT_ANONYMOUS_HTTP_PER_WINDOW: OUT_OF_THE_WAY,
      },
    });
    const url = `http://127.0.0.1:${port}/graphql`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new NotReady(`our gateway (EDGE_LIMITS=${edgeLimits ? 'on' : 'off'}) exited during start-up (${child.exitCode})`);
      if ((await getJson(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new NotReady('our gateway did not answer /healthz within 30 s');
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return new OurGateway(child, url);
  }

  async stats(): Promise<ProcessStats> {
    const { body } = await getJson(`${new URL(this.url).origin}/healthz`);
    return { pid: body.pid ?? null, rssBytes: body.rssBytes ?? null, maxRssBytes: body.maxRssBytes ?? null, cpuMicros: body.cpuMicros ?? null };
  }

  protected askToExit(): void {
    this.child.kill('SIGTERM');
  }
}

/** The plain gateway in a child process. */
class PlainGateway extends ChildGateway {
  static async start(supergraphPath: string, subgraphUrls: Record<string, string>, subgraphSecret: string): Promise<PlainGateway> {
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), 'plain-gateway.ts');
    const child = fork(entry, [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: {
        ...process.env,
        BENCH_SUPERGRAPH_PATH: supergraphPath,
        BENCH_SUBGRAPH_URLS: JSON.stringify(subgraphUrls),
        SUBGRAPH_SECRET: subgraphSecret,
        // Apollo's hourly usage telemetry: no effect on the request path; a bench should not phone home.
        APOLLO_TELEMETRY_DISABLED: 'true',
      },
    });
    const ready = await new Promise<Extract<PlainGatewayMessage, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the plain gateway did not start within 30 s')), 30_000);
      child.on('message', (m: PlainGatewayMessage) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve(m);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the plain gateway exited during start-up (${code})`));
      });
    });
    return new PlainGateway(child, ready.url.replace(/\/$/, ''));
  }

  stats(): Promise<ProcessStats> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the plain gateway did not report its stats')), 5_000);
      const onMessage = (m: PlainGatewayMessage) => {
        if (m.type !== 'stats') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve({ pid: m.pid, rssBytes: m.rssBytes, maxRssBytes: m.maxRssBytes, cpuMicros: m.cpuMicros });
      };
      this.child.on('message', onMessage);
      this.child.send({ type: 'stats' });
    });
  }

  protected askToExit(): void {
    this.child.send({ type: 'exit' });
  }
}

/** Checks that `gateway` reaches the subgraphs the query needs and that the query returns what the bench expects. */
async function checkGateway(name: string, gateway: BenchGateway, options: Options, target: LoadTarget): Promise<void> {
  const response = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(target.body) });
  const json = (await response.json().catch(() => null)) as any;
  const errors = JSON.stringify(json?.errors ?? []);
  if (errors.includes('GATEWAY_CREDENTIAL_REQUIRED') || errors.includes('refused the gateway')) {
    throw new NotReady(
      `the subgraphs refuse ${name}'s credential: run the bench with the stack's SUBGRAPH_SECRET, or against the stack \`npm start\` runs now (it records its secret in .data/run/)`,
    );
  }
  if (json?.errors?.length) {
    throw new NotReady(
      `the benchmark query fails on ${name}: ${errors.slice(0, 300)}\nIs the stack running (\`npm start\`)? --query ${options.query} needs ${QUERIES[options.query].subgraphs.join(' and ')}.`,
    );
  }
  const edges = json?.data?.products?.edges;
  if (!Array.isArray(edges) || edges.length !== 20) {
    throw new NotReady(
      `the benchmark query returned ${Array.isArray(edges) ? edges.length : 'no'} products on ${name}; it needs 20. Load the catalogue with \`npm run seed\`.`,
    );
  }
}

const NAMES = ['ours', 'ours-off', 'plain'] as const;
type GatewayName = (typeof NAMES)[number];

/** Both modes' usage: run.ts prints this for --help, with or without --stack. */
export const USAGE = `${REPLAY_USAGE}\n\n--stack: the full stack end to end (what a user sees), as before.\n\n${STACK_USAGE}`;

/** `--stack` runs {@link stackMain}; anything else the gateway-bound bench (bench/federation/bench.ts). */
export function main(args: readonly string[]): Promise<number> {
  return args.includes('--stack') ? stackMain(args.filter((a) => a !== '--stack')) : replayMain(args);
}

async function stackMain(args: readonly string[]): Promise<number> {
  const config = loadConfig();
  const options = parseOptions(args);
  const query = QUERIES[options.query];
  const body = { query: query.query, operationName: 'Products' };
  const expect = { path: ['data', 'products', 'edges'], length: 20 };
  const subgraphSecret = runSubgraphSecret();
  if (!subgraphSecret) {
    console.error(
      "bench gateway: no SUBGRAPH_SECRET: start the stack with `npm start` first (it records its secret in .data/run/), or set SUBGRAPH_SECRET to the stack's",
    );
    return 1;
  }

  const roundMs = (options.durationS * 1000) / options.rounds;
  const gateways = new Map<GatewayName, BenchGateway>();
  let load: LoadGenerator | undefined;
  const guard = watchdog((options.warmupS * 3 + options.durationS * 3 + 120) * 1000, () => {
    for (const g of gateways.values()) g.child.kill('SIGKILL');
  });
  try {
    console.log(
      `starting our gateway twice (edge limits on, and EDGE_LIMITS=off) and a plain ApolloServer + ApolloGateway (default settings) over ${path.relative(process.cwd(), config.supergraphPath) || config.supergraphPath}`,
    );
    try {
      gateways.set('ours', await OurGateway.start(true, subgraphSecret));
      gateways.set('ours-off', await OurGateway.start(false, subgraphSecret));
      gateways.set(
        'plain',
        await PlainGateway.start(
          config.supergraphPath,
          Object.fromEntries(Object.entries(config.subgraphUrls).map(([name, urls]) => [name, urls![0]])),
          subgraphSecret,
        ),
      );
      for (const name of NAMES) await checkGateway(name, gateways.get(name)!, options, { name, url: gateways.get(name)!.url, body, expect });
    } catch (error) {
      if (error instanceof NotReady) {
        console.error(`bench gateway: ${error.message}`);
        return 1;
      }
      throw error;
    }
    load = await LoadGenerator.start();
    const targets: LoadTarget[] = NAMES.map((name) => ({ name, url: gateways.get(name)!.url, body, expect }));

    console.log(
      `query: ${query.description}; ${options.concurrency} in flight; ${options.rounds} × ${fixed(roundMs / 1000)} s per gateway after ${options.warmupS} s warm-up`,
    );
    if (options.warmupS > 0) {
      for (const target of targets) {
        const warm = await load.run(target, { concurrency: options.concurrency, durationMs: options.warmupS * 1000, record: false });
        console.log(`  warm-up ${target.name.padEnd(8)} ${fixed(warm.requests / (warm.elapsedMs / 1000), 0)} req/s, ${warm.errors} errors`);
      }
    }

    const statsOf = async () =>
      Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, await gateways.get(n)!.stats()] as const))) as Record<GatewayName, ProcessStats>;
    const before = await statsOf();
    const runs: Record<GatewayName, LoadRun[]> = { ours: [], 'ours-off': [], plain: [] };
    for (let round = 0; round < options.rounds; round++) {
      // Rotate who goes first, so slow drift (caches, GC, other load) favours no one.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]);
      for (const target of order) {
        const run = await load.run(target, { concurrency: options.concurrency, durationMs: roundMs });
        runs[target.name as GatewayName].push(run);
        console.log(`  round ${round + 1} ${target.name.padEnd(8)} ${fixed(run.requests / (run.elapsedMs / 1000), 0)} req/s, ${run.errors} errors`);
      }
    }
    const afterStats = await statsOf();

    const summaries = Object.fromEntries(NAMES.map((n) => [n, summarize(runs[n])])) as Record<GatewayName, LoadSummary>;
    const cpuPerRequest = (name: GatewayName) => {
      const a = before[name].cpuMicros,
        b = afterStats[name].cpuMicros;
      return a === null || b === null ? null : (b - a) / summaries[name].requests;
    };
    const report = (name: GatewayName) => ({
      url: gateways.get(name)!.url,
      ...summaries[name],
      process: {
        pid: afterStats[name].pid,
        rssBytes: afterStats[name].rssBytes,
        peakRssBytes: afterStats[name].maxRssBytes,
        cpuMicrosPerRequest: cpuPerRequest(name),
      },
    });
    const ratio = (a: GatewayName, b: GatewayName) => ({
      requestsPerSecond: summaries[a].requestsPerSecond / summaries[b].requestsPerSecond,
      p50: summaries[a].latencyMs.p50 / summaries[b].latencyMs.p50,
      p99: summaries[a].latencyMs.p99 / summaries[b].latencyMs.p99,
      peakRss: afterStats[a].maxRssBytes && afterStats[b].maxRssBytes ? afterStats[a].maxRssBytes! / afterStats[b].maxRssBytes! : null,
      cpuPerRequest: cpuPerRequest(a) !== null && cpuPerRequest(b) !== null ? cpuPerRequest(a)! / cpuPerRequest(b)! : null,
    });
    const result = {
      bench: 'gateway',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        memoryBytes: os.totalmem(),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
      },
      settings: {
        query: options.query,
        operation: query.query,
        concurrency: options.concurrency,
        durationSecondsPerGateway: options.durationS,
        rounds: options.rounds,
        warmupSeconds: options.warmupS,
      },
      targets: Object.fromEntries(NAMES.map((n) => [n, report(n)])),
      ratio: ratio('ours', 'plain'),
      limitsCost: ratio('ours', 'ours-off'),
      notes: [
        'ours: every edge limit on, the rate limits raised so that they count every request in Redis but refuse none; ours-off: EDGE_LIMITS=off',
        'the load generator runs in its own process on the same machine, as do the subgraphs and their databases',
      ],
    };

    const ratioRow = (label: string, r: ReturnType<typeof ratio>) => [
      label,
      fixed(r.requestsPerSecond, 3),
      fixed(r.p50, 3),
      '',
      fixed(r.p99, 3),
      '',
      fixed(r.peakRss ?? Number.NaN, 2),
      fixed(r.cpuPerRequest ?? Number.NaN, 3),
    ];
    const rows = [
      ['gateway', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'peak RSS MiB', 'CPU µs/req'],
      ...NAMES.map((name) => [
        name,
        fixed(summaries[name].requestsPerSecond, 0),
        fixed(summaries[name].latencyMs.p50, 2),
        fixed(summaries[name].latencyMs.p90, 2),
        fixed(summaries[name].latencyMs.p99, 2),
        String(summaries[name].errors),
        mib(afterStats[name].maxRssBytes),
        fixed(cpuPerRequest(name) ?? Number.NaN, 0),
      ]),
      ratioRow('ours / plain', result.ratio),
      ratioRow('ours / ours-off', result.limitsCost),
    ];
    console.log(`\n${table(rows)}\n`);
    for (const name of NAMES) {
      if (summaries[name].errors) console.log(`${name} errors, e.g.:\n  ${summaries[name].errorSamples.join('\n  ')}`);
    }
    const files = await writeResults('gateway', result);
    console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    return 0;
  } finally {
    await load?.close();
    await Promise.all([...gateways.values()].map((g) => g.stop()));
    guard.clear();
  }
}
