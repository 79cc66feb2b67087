/**
 * `npm run bench -- gateway`: our gateway (the one `npm start` runs on GATEWAY_PORT) against a
 * plain `ApolloServer` + `ApolloGateway` with default settings that this run starts over the same
 * supergraph and the same running subgraphs. Both get the same warm-up, then alternate rounds of
 * the same query at the same concurrency from a load generator in its own process.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../platform/src/config.ts';
import {
  type LoadRun, type LoadSummary, type LoadTarget,
  LoadGenerator, NotReady, UsageError, fixed, forEachFlag, getJson, mib, positiveNumber, summarize, table, urlOption, watchdog, writeResults,
} from './lib.ts';
import type { PlainGatewayMessage } from './plain-gateway.ts';

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

export const USAGE = `usage: npm run bench -- gateway [--concurrency 32] [--duration 20] [--warmup 3] [--rounds 2]
                                [--query ${Object.keys(QUERIES).join('|')}] [--gateway-url URL]

  --concurrency  requests in flight against each gateway (default 32)
  --duration     measured seconds per gateway, split into --rounds alternating rounds (default 20)
  --warmup       unmeasured seconds per gateway before the first round (default 3)
  --rounds       alternating rounds per gateway (default 2)
  --query        ${Object.entries(QUERIES).map(([k, v]) => `${k}: ${v.description}`).join('\n                 ')}
  --gateway-url  our running gateway (default http://127.0.0.1:$GATEWAY_PORT/graphql)

Needs the stack running (npm start): the subgraphs, the seed catalogue and our gateway.`;

interface Options {
  concurrency: number;
  durationS: number;
  warmupS: number;
  rounds: number;
  query: QueryName;
  gatewayUrl: string;
}

function parseOptions(args: readonly string[], defaultGatewayUrl: string): Options {
  const options: Options = { concurrency: 32, durationS: 20, warmupS: 3, rounds: 2, query: 'products', gatewayUrl: defaultGatewayUrl };
  forEachFlag(args, (name, value) => {
    switch (name) {
      case '--concurrency': options.concurrency = positiveNumber(name, value(), { integer: true, max: 4096 }); break;
      case '--duration': options.durationS = positiveNumber(name, value(), { max: 3600 }); break;
      case '--warmup': {
        const v = value();
        options.warmupS = v === '0' ? 0 : positiveNumber(name, v, { max: 600 });
        break;
      }
      case '--rounds': options.rounds = positiveNumber(name, value(), { integer: true, max: 100 }); break;
      case '--query': {
        const v = value();
        if (!(v in QUERIES)) throw new UsageError(`--query must be one of ${Object.keys(QUERIES).join(', ')}, got "${v}"`);
        options.query = v as QueryName;
        break;
      }
      case '--gateway-url': {
        options.gatewayUrl = urlOption(value(), '--gateway-url');
        break;
      }
      default: throw new UsageError(`unknown option "${name}"`);
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

async function oursStats(origin: string): Promise<ProcessStats> {
  const { body } = await getJson(`${origin}/healthz`);
  return { pid: body.pid ?? null, rssBytes: body.rssBytes ?? null, maxRssBytes: body.maxRssBytes ?? null, cpuMicros: body.cpuMicros ?? null };
}

/** The plain gateway in a child process. */
class PlainGateway {
  readonly child: ChildProcess;
  readonly url: string;
  readonly pid: number;

  private constructor(child: ChildProcess, url: string, pid: number) {
    this.child = child;
    this.url = url;
    this.pid = pid;
  }

  static async start(supergraphPath: string, subgraphUrls: Record<string, string>): Promise<PlainGateway> {
    const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), 'plain-gateway.ts');
    const child = fork(entry, [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: {
        ...process.env,
        BENCH_SUPERGRAPH_PATH: supergraphPath,
        BENCH_SUBGRAPH_URLS: JSON.stringify(subgraphUrls),
        // Apollo's hourly usage telemetry: no effect on the request path; a bench should not phone home.
        APOLLO_TELEMETRY_DISABLED: 'true',
      },
    });
    const ready = await new Promise<Extract<PlainGatewayMessage, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the plain gateway did not start within 30 s')), 30_000);
      child.on('message', (m: PlainGatewayMessage) => { if (m.type === 'ready') { clearTimeout(timer); resolve(m); } });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the plain gateway exited during start-up (${code})`)); });
    });
    return new PlainGateway(child, ready.url.replace(/\/$/, ''), ready.pid);
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

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'exit' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Checks that our gateway runs, its subgraphs answer, and the query returns what the bench expects. */
async function checkStack(options: Options, target: LoadTarget): Promise<void> {
  const origin = new URL(options.gatewayUrl).origin;
  try {
    await getJson(`${origin}/healthz`);
  } catch (error) {
    throw new NotReady(`our gateway is not running at ${origin} (${(error as Error).cause ? ((error as Error).cause as Error).message : (error as Error).message}).\nStart the stack with \`npm start\` (or pass --gateway-url).`);
  }
  const { body: ready } = await getJson(`${origin}/readyz`, 10_000).catch(() => ({ body: null as any }));
  const down = Object.entries<{ ok: boolean; error?: string }>(ready?.checks ?? {}).filter(([, c]) => !c.ok);
  const needed = QUERIES[options.query].subgraphs as readonly string[];
  const blocking = down.filter(([name]) => needed.includes(name));
  if (blocking.length) {
    throw new NotReady(`subgraphs this query needs do not answer: ${blocking.map(([n, c]) => `${n} (${c.error})`).join('; ')}`);
  }
  if (down.length) console.log(`note: not ready, but not needed by --query ${options.query}: ${down.map(([n]) => n).join(', ')}`);
  const response = await fetch(options.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(target.body) });
  const json = await response.json() as any;
  const edges = json?.data?.products?.edges;
  if (json.errors?.length) throw new NotReady(`the benchmark query fails on our gateway: ${JSON.stringify(json.errors).slice(0, 300)}`);
  if (!Array.isArray(edges) || edges.length !== 20) {
    throw new NotReady(`the benchmark query returned ${Array.isArray(edges) ? edges.length : 'no'} products; it needs 20. Load the catalogue with \`npm run seed\`.`);
  }
}

export async function main(args: readonly string[]): Promise<number> {
  const config = loadConfig();
  const options = parseOptions(args, `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.gatewayPort}/graphql`);
  const query = QUERIES[options.query];
  const body = { query: query.query, operationName: 'Products' };
  const expect = { path: ['data', 'products', 'edges'], length: 20 };
  const ours: LoadTarget = { name: 'ours', url: options.gatewayUrl, body, expect };
  const origin = new URL(options.gatewayUrl).origin;

  try {
    await checkStack(options, ours);
  } catch (error) {
    if (error instanceof NotReady) {
      console.error(`bench gateway: ${error.message}`);
      return 1;
    }
    throw error;
  }

  const roundMs = (options.durationS * 1000) / options.rounds;
  let plain: PlainGateway | undefined;
  let load: LoadGenerator | undefined;
  const guard = watchdog((options.warmupS * 2 + options.durationS * 2 + 90) * 1000, () => {
    plain?.child.kill('SIGKILL');
  });
  try {
    console.log(`starting a plain ApolloServer + ApolloGateway (default settings) over ${path.relative(process.cwd(), config.supergraphPath) || config.supergraphPath}`);
    plain = await PlainGateway.start(config.supergraphPath, { ...config.subgraphUrls } as Record<string, string>);
    const plainTarget: LoadTarget = { name: 'plain', url: plain.url, body, expect };
    load = await LoadGenerator.start();
    const targets = [ours, plainTarget];

    console.log(`query: ${query.description}; ${options.concurrency} in flight; ${options.rounds} × ${fixed(roundMs / 1000)} s per gateway after ${options.warmupS} s warm-up`);
    if (options.warmupS > 0) {
      for (const target of targets) {
        const warm = await load.run(target, { concurrency: options.concurrency, durationMs: options.warmupS * 1000, record: false });
        console.log(`  warm-up ${target.name.padEnd(5)} ${fixed(warm.requests / (warm.elapsedMs / 1000), 0)} req/s, ${warm.errors} errors`);
      }
    }

    const before = { ours: await oursStats(origin), plain: await plain.stats() };
    const runs: Record<string, LoadRun[]> = { ours: [], plain: [] };
    for (let round = 0; round < options.rounds; round++) {
      // Alternate who goes first, so slow drift (caches, GC, other load) does not favour one side.
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) {
        const run = await load.run(target, { concurrency: options.concurrency, durationMs: roundMs });
        runs[target.name].push(run);
        console.log(`  round ${round + 1} ${target.name.padEnd(5)} ${fixed(run.requests / (run.elapsedMs / 1000), 0)} req/s, ${run.errors} errors`);
      }
    }
    const afterStats = { ours: await oursStats(origin), plain: await plain.stats() };

    const summaries: Record<string, LoadSummary> = { ours: summarize(runs.ours), plain: summarize(runs.plain) };
    const cpuPerRequest = (name: 'ours' | 'plain') => {
      const a = before[name].cpuMicros, b = afterStats[name].cpuMicros;
      return a === null || b === null ? null : (b - a) / summaries[name].requests;
    };
    const report = (name: 'ours' | 'plain') => ({
      url: name === 'ours' ? options.gatewayUrl : plain!.url,
      ...summaries[name],
      process: {
        pid: afterStats[name].pid,
        rssBytes: afterStats[name].rssBytes,
        peakRssBytes: afterStats[name].maxRssBytes,
        cpuMicrosPerRequest: cpuPerRequest(name),
      },
    });
    const result = {
      bench: 'gateway',
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryBytes: os.totalmem(), node: process.version, platform: `${os.platform()} ${os.release()}` },
      settings: { query: options.query, operation: query.query, concurrency: options.concurrency, durationSecondsPerGateway: options.durationS, rounds: options.rounds, warmupSeconds: options.warmupS },
      targets: { ours: report('ours'), plain: report('plain') },
      ratio: {
        requestsPerSecond: summaries.ours.requestsPerSecond / summaries.plain.requestsPerSecond,
        p50: summaries.ours.latencyMs.p50 / summaries.plain.latencyMs.p50,
        p99: summaries.ours.latencyMs.p99 / summaries.plain.latencyMs.p99,
        peakRss: afterStats.ours.maxRssBytes && afterStats.plain.maxRssBytes ? afterStats.ours.maxRssBytes / afterStats.plain.maxRssBytes : null,
        cpuPerRequest: cpuPerRequest('ours') !== null ? cpuPerRequest('ours')! / cpuPerRequest('plain')! : null,
      },
      notes: [
        'peak RSS is each process\'s high-water mark over its lifetime (ours has been running since npm start)',
        'the load generator runs in its own process on the same machine, as do the subgraphs and their databases',
      ],
    };

    const rows = [
      ['gateway', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'peak RSS MiB', 'CPU µs/req'],
      ...(['ours', 'plain'] as const).map((name) => [
        `${name} (${new URL(result.targets[name].url).host})`,
        fixed(summaries[name].requestsPerSecond, 0),
        fixed(summaries[name].latencyMs.p50, 2),
        fixed(summaries[name].latencyMs.p90, 2),
        fixed(summaries[name].latencyMs.p99, 2),
        String(summaries[name].errors),
        mib(afterStats[name].maxRssBytes),
        fixed(cpuPerRequest(name) ?? Number.NaN, 0),
      ]),
      ['ours / plain', fixed(result.ratio.requestsPerSecond, 2), fixed(result.ratio.p50, 2), '', fixed(result.ratio.p99, 2), '',
        fixed(result.ratio.peakRss ?? Number.NaN, 2), fixed(result.ratio.cpuPerRequest ?? Number.NaN, 2)],
    ];
    console.log(`\n${table(rows)}\n`);
    for (const name of ['ours', 'plain'] as const) {
      if (summaries[name].errors) console.log(`${name} errors, e.g.:\n  ${summaries[name].errorSamples.join('\n  ')}`);
    }
    const files = await writeResults('gateway', result);
    console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    return 0;
  } finally {
    await load?.close();
    await plain?.stop();
    guard.clear();
  }
}
