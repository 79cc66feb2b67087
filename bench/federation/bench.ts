/**
 * `npm run bench -- gateway`: the gateways of ./gateways.ts side by side, bound by the gateway.
 *
 * - Subgraphs are replays (./replay.ts): a subgraph request seen before is answered with recorded
 *   bytes, so the figures are the gateway's and not the subgraphs' or PostgreSQL's. Everything
 *   is recorded from the real implementations during an unmeasured warm-up; a measured round
 *   counts the requests each subgraph received, and the misses (should be 0).
 * - The gateway under test runs alone on core 0 (`taskset -c 0`); this process, the replay server
 *   and the load generator on core 1. Without taskset (or with one core) nothing is pinned, and the
 *   output says so.
 * - Workloads: `federation`, the public federation benchmark's query (identical requests) over its
 *   four subgraphs; `federation-distinct`, the same shape with a different `$shop` per request,
 *   cycling over a fixed set all recorded in the warm-up, so no deduplication applies within a
 *   round; `products`, SwiftCart's products-with-stock query over our product and inventory subgraphs.
 * - Per workload, each gateway is a fresh process; all get the same recording pass and warm-up, then
 *   alternating rounds (the order rotates each round). Per gateway and workload: median and spread
 *   (min–max over rounds) of req/s, p50 and p99 latency, the gateway process's CPU per request
 *   (/proc/<pid>/stat), subgraph requests per request; peak RSS (VmHWM); errors and misses.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../platform/src/config.ts';
import {
  type LoadRun,
  type LoadTarget,
  LoadGenerator,
  NotReady,
  UsageError,
  distribution,
  fixed,
  forEachFlag,
  freePort,
  mib,
  pinToCore,
  positiveNumber,
  procStats,
  summarize,
  table,
  watchdog,
  writeResults,
} from '../lib.ts';
import { GATEWAY_DESCRIPTIONS, GATEWAY_NAMES, type GatewayName, type GatewayProcess, killGateways, startGateway } from './gateways.ts';
import { type ReplayCounters, type ReplayKind, ReplayServer } from './replay.ts';
import { FEDERATION_DISTINCT_QUERY, FEDERATION_QUERY, type FederationSubgraphName, composeFederationSupergraph, shops } from './subgraphs.ts';

const WORKLOAD_NAMES = ['federation', 'federation-distinct', 'products'] as const;
type WorkloadName = (typeof WORKLOAD_NAMES)[number];

const WORKLOAD_DESCRIPTIONS: Readonly<Record<WorkloadName, string>> = {
  federation: "the public federation benchmark's query (k6.js), identical requests, over its four subgraphs",
  'federation-distinct': 'the same query with a different $shop per request (--distinct values, cycled), so no two in flight are alike',
  products: 'products(first: 20) with price and stock over our product and inventory subgraphs (needs PostgreSQL and Redis)',
};

const PRODUCTS_QUERY = 'query Products { products(first: 20) { edges { node { sku name price { amount currency } stock { available } } } } }';

/**
 * Our gateway's cost limit (GRAPHQL_MAX_COST, default 10,000) refuses the public query: it
 * estimates its nested lists at 10 items each, a cost of 102,927. Raised above that for the
 * federation workloads only, as the public benchmark turns Hive Gateway's depth and token limits
 * off for the same query; every other limit stays at its default.
 */
const OURS_FEDERATION_ENV = { GRAPHQL_MAX_COST: '1000000' };

export const USAGE = `usage: npm run bench -- gateway [--gateways ${GATEWAY_NAMES.join(',')}]
                              [--workloads ${WORKLOAD_NAMES.join(',')}]
                              [--concurrency 50] [--rounds 3] [--round 15] [--warmup 5] [--distinct 2000]
       npm run bench -- gateway --stack [options]   (the full stack end to end; --stack --help for its options)

Gateway-bound: each gateway in a fresh process pinned alone to core 0 (taskset -c 0), the
subgraphs replayed from recordings and the load generator on core 1.

  --gateways     comma-separated subset (default all):
                 ${GATEWAY_NAMES.map((n) => `${n}: ${GATEWAY_DESCRIPTIONS[n]}`).join('\n                 ')}
  --workloads    comma-separated subset (default all):
                 ${WORKLOAD_NAMES.map((n) => `${n}: ${WORKLOAD_DESCRIPTIONS[n]}`).join('\n                 ')}
  --concurrency  requests in flight (default 50, as the public benchmark's 50 VUs)
  --rounds       alternating measured rounds per gateway and workload (default 3)
  --round        seconds per round (default 15)
  --warmup       unmeasured seconds per gateway and workload after the recording pass (default 5)
  --distinct     $shop values federation-distinct cycles over (default 2000)
  --baseline     DIR: also runs \`baseline\`, ${GATEWAY_DESCRIPTIONS.baseline}

The products workload needs PostgreSQL and Redis as for npm test (127.0.0.1:5432 and :6379 by
default); it makes and drops its own databases. The rate limits of ours count in Redis in every
workload. Results: a table, and bench/results/gateway-<timestamp>.json.`;

interface Options {
  gateways: GatewayName[];
  workloads: WorkloadName[];
  concurrency: number;
  rounds: number;
  roundS: number;
  warmupS: number;
  distinct: number;
  baselineDir?: string;
}

function subset<T extends string>(flag: string, raw: string, all: readonly T[]): T[] {
  const names = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !all.includes(n as T));
  if (names.length === 0 || unknown.length) throw new UsageError(`${flag} takes a comma-separated subset of ${all.join(', ')}; got "${raw}"`);
  // The canonical order, whatever order they were given in.
  return all.filter((n) => names.includes(n));
}

function parseOptions(args: readonly string[]): Options {
  const options: Options = { gateways: [...GATEWAY_NAMES], workloads: [...WORKLOAD_NAMES], concurrency: 50, rounds: 3, roundS: 15, warmupS: 5, distinct: 2000 };
  forEachFlag(args, (name, value) => {
    switch (name) {
      case '--gateways':
        options.gateways = subset(name, value(), GATEWAY_NAMES);
        break;
      case '--workloads':
        options.workloads = subset(name, value(), WORKLOAD_NAMES);
        break;
      case '--concurrency':
        options.concurrency = positiveNumber(name, value(), { integer: true, max: 4096 });
        break;
      case '--rounds':
        options.rounds = positiveNumber(name, value(), { integer: true, max: 100 });
        break;
      case '--round':
        options.roundS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--warmup': {
        const v = value();
        options.warmupS = v === '0' ? 0 : positiveNumber(name, v, { max: 600 });
        break;
      }
      case '--distinct':
        options.distinct = positiveNumber(name, value(), { integer: true, max: 100_000 });
        break;
      case '--baseline': {
        const dir = path.resolve(value());
        if (!existsSync(path.join(dir, 'gateway', 'src', 'main.ts')))
          throw new UsageError(`--baseline takes a checkout of this repository (no gateway/src/main.ts in ${dir})`);
        options.baselineDir = dir;
        break;
      }
      default:
        throw new UsageError(`unknown option "${name}"`);
    }
  });
  if (options.baselineDir && !options.gateways.includes('baseline')) options.gateways.splice(1, 0, 'baseline');
  return options;
}

/** Where the processes run: the gateway core's pinning prefix, or why there is none. */
interface Placement {
  readonly gatewayPin: readonly string[] | null;
  readonly note: string;
}

/**
 * Pins this process (and so the replay server and load generator it forks) to core 1, and
 * returns the prefix that puts a gateway on core 0.
 */
function place(): Placement {
  if (os.availableParallelism() < 2) return { gatewayPin: null, note: 'one core available: nothing pinned, the gateway shares it with the load and replays' };
  if (!pinToCore(process.pid, 1)) {
    return { gatewayPin: null, note: 'taskset not found (util-linux): nothing pinned, the gateway shares the cores with the load and replays' };
  }
  return { gatewayPin: ['taskset', '-c', '0'], note: 'gateway alone on core 0 (taskset -c 0); replay server, load generator and bench on core 1' };
}

/**
 * The commit the gateways run, and the files under gateway/ and platform/ that differ from it:
 * a gateway is a fresh process per workload, so an edit during a run changes what later rows measure.
 */
function codeVersion(): { commit: string | null; uncommitted: string[] } {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const uncommitted = git('status', '--porcelain', '--', 'gateway', 'platform', 'package-lock.json').split('\n').filter(Boolean);
    return { commit: git('rev-parse', '--short', 'HEAD'), uncommitted };
  } catch {
    return { commit: null, uncommitted: [] };
  }
}

/** The CPUs a process may run on, from /proc/<pid>/status (Linux), e.g. "0". */
async function allowedCpus(pid: number): Promise<string | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return /^Cpus_allowed_list:\s+(\S+)/m.exec(status)?.[1] ?? null;
}

/** What one workload sends and expects. */
interface Workload {
  readonly name: WorkloadName;
  readonly replay: ReplayKind;
  readonly bodies: readonly unknown[];
  readonly expect: { readonly path: readonly string[]; readonly length: number };
}

function workloadOf(name: WorkloadName, options: Options): Workload {
  switch (name) {
    case 'federation':
      // The k6 payload: the query alone.
      return { name, replay: 'federation', bodies: [{ query: FEDERATION_QUERY }], expect: { path: ['data', 'users'], length: 6 } };
    case 'federation-distinct':
      return {
        name,
        replay: 'federation',
        bodies: shops(options.distinct).map((shop) => ({ query: FEDERATION_DISTINCT_QUERY, variables: { shop } })),
        expect: { path: ['data', 'users'], length: 6 },
      };
    case 'products':
      return {
        name,
        replay: 'products',
        bodies: [{ query: PRODUCTS_QUERY, operationName: 'Products' }],
        expect: { path: ['data', 'products', 'edges'], length: 20 },
      };
  }
}

/** schema/supergraph.graphql with product and inventory routed to the replay, the rest to a closed port. */
async function productsSupergraph(urls: Readonly<Record<string, string>>): Promise<string> {
  const sdl = await readFile(path.join(REPO_ROOT, 'schema', 'supergraph.graphql'), 'utf8');
  const closed = `http://127.0.0.1:${await freePort()}/graphql`;
  let routed = 0;
  const rewritten = sdl.replace(/(@join__graph\(name: "([^"]+)", url: ")([^"]*)(")/g, (_match, head: string, name: string, _url: string, tail: string) => {
    routed += 1;
    return `${head}${urls[name] ?? closed}${tail}`;
  });
  if (routed === 0) throw new Error('schema/supergraph.graphql has no @join__graph routing URLs to rewrite');
  return rewritten;
}

/** One measured round of one gateway. */
interface Round {
  readonly round: number;
  readonly requests: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMsPerRequest: number | null;
  /** The gateway process's CPU over the round, % of one core. */
  readonly gatewayCpuPercent: number | null;
  /** The replay server, load generator and bench together, % of one core. */
  readonly loadSideCpuPercent: number | null;
  readonly subgraphRequests: Readonly<Record<string, number>>;
  readonly subgraphRequestsPerRequest: number;
  readonly misses: number;
  readonly peakRssBytes: number | null;
}

/** Median and spread of one figure over rounds. */
interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

function spread(values: readonly (number | null)[]): Spread {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  const mid = Math.floor(v.length / 2);
  return { median: v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2, min: v[0], max: v.at(-1)! };
}

/** "median (min–max)" for a table cell. */
function cell(s: Spread, digits: number): string {
  if (!Number.isFinite(s.median)) return '-';
  return s.min === s.max ? fixed(s.median, digits) : `${fixed(s.median, digits)} (${fixed(s.min, digits)}–${fixed(s.max, digits)})`;
}

/** {@link cell} in MiB. */
function cellMib(s: Spread): string {
  const m = (bytes: number) => bytes / 1024 / 1024;
  return cell({ median: m(s.median), min: m(s.min), max: m(s.max) }, 1);
}

async function cpuSeconds(pid: number | undefined): Promise<number | null> {
  return pid === undefined ? null : (await procStats(pid)).cpuSeconds;
}

/** One gateway's figures over one workload. */
interface GatewayResult {
  readonly gateway: GatewayName;
  readonly description: string;
  readonly pid: number;
  readonly cpus: string | null;
  readonly rounds: readonly Round[];
  readonly requestsPerSecond: Spread;
  readonly p50Ms: Spread;
  readonly p99Ms: Spread;
  readonly cpuMsPerRequest: Spread;
  readonly subgraphRequestsPerRequest: Spread;
  readonly subgraphRequestsPerRequestBySubgraph: Readonly<Record<string, number>>;
  readonly gatewayCpuPercent: Spread;
  readonly loadSideCpuPercent: Spread;
  /** VmHWM after each round: it only grows, so the max is the process's peak over the workload. */
  readonly peakRssBytes: Spread;
  readonly errorsPerRound: Spread;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  readonly misses: number;
  /** All rounds' latencies together (lib.ts summarize). */
  readonly overall: ReturnType<typeof summarize>;
}

interface WorkloadResult {
  readonly workload: WorkloadName;
  readonly description: string;
  readonly distinctBodies: number;
  readonly recorded: number;
  readonly recordedBytes: number;
  readonly sameDataAcrossGateways: boolean;
  readonly gateways: readonly GatewayResult[];
}

/** Runs one workload from a fresh replay server and fresh gateways to its figures. */
async function runWorkload(
  workload: Workload,
  options: Options,
  placement: Placement,
  load: LoadGenerator,
  tmp: string,
  runId: string,
  say: (line: string) => void,
): Promise<WorkloadResult> {
  const replayEnv: NodeJS.ProcessEnv = {
    ...process.env,
    // Our subgraphs over their own databases, Redis keys and topics, dropped at the end.
    DB_PREFIX: `swiftcart_benchgw_${runId}`,
    REDIS_PREFIX: `swiftcart-benchgw:${runId}:`,
    KAFKA_TOPIC_PREFIX: `benchgw.${runId}.`,
    LOG_LEVEL: 'warn',
    SUBGRAPH_SECRET: randomBytes(32).toString('base64url'),
  };
  delete replayEnv.NODE_ENV;
  const replay = await ReplayServer.start(workload.replay, replayEnv);
  const gateways = new Map<GatewayName, GatewayProcess>();
  try {
    const supergraph =
      workload.replay === 'federation'
        ? composeFederationSupergraph(replay.urls as Record<FederationSubgraphName, string>)
        : await productsSupergraph(replay.urls);
    const supergraphPath = path.join(tmp, `${workload.name}.graphql`);
    await writeFile(supergraphPath, supergraph);
    say(
      `${workload.name}: ${workload.replay === 'federation' ? 'supergraph composed from bench/federation/subgraphs.ts' : 'schema/supergraph.graphql'}, routed to the replay server (${Object.keys(replay.urls).join(', ')})`,
    );
    for (const name of options.gateways) {
      const gateway = await startGateway(name, {
        supergraphPath,
        pin: placement.gatewayPin,
        oursEnv: workload.replay === 'federation' ? OURS_FEDERATION_ENV : {},
        redisPrefix: `swiftcart-benchgw:${runId}:`,
        baselineDir: options.baselineDir,
      });
      gateways.set(name, gateway);
    }

    // Every gateway must answer the first body correctly, and all with the same data.
    const answers = new Map<GatewayName, string>();
    for (const [name, gateway] of gateways) {
      const response = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(workload.bodies[0]) });
      const text = await response.text();
      let json: any = null;
      try {
        json = JSON.parse(text);
      } catch {
        // reported below
      }
      let value = json;
      for (const key of workload.expect.path) value = value?.[key];
      if (response.status !== 200 || json?.errors?.length || !Array.isArray(value) || value.length !== workload.expect.length) {
        throw new NotReady(`${name} answers the ${workload.name} query wrongly (HTTP ${response.status}): ${text.slice(0, 400)}\nsee ${gateway.logPath}`);
      }
      answers.set(name, JSON.stringify(json.data));
    }
    const sameData = new Set(answers.values()).size === 1;
    if (!sameData) say(`  note: the gateways' answers differ (${[...answers].map(([n, a]) => `${n}: ${a.length} bytes`).join(', ')})`);

    const targets = new Map<GatewayName, LoadTarget>(
      [...gateways].map(([name, g]) => [name, { name, url: g.url, body: workload.bodies[0], bodies: workload.bodies, expect: workload.expect }]),
    );
    // Recording pass: every distinct body once through every gateway (the load worker's cursor
    // walks the cycle across runs), so the measured rounds find each subgraph request recorded.
    for (const [name, target] of targets) {
      let sent = 0;
      while (workload.bodies.length > 1 && sent < workload.bodies.length) {
        const run = await load.run(target, { concurrency: options.concurrency, durationMs: 1_000, record: false });
        sent += run.requests;
        if (run.errors) throw new NotReady(`${name} failed ${run.errors} requests while recording: ${run.errorSamples.join('; ')}`);
      }
      if (options.warmupS > 0) {
        const warm = await load.run(target, { concurrency: options.concurrency, durationMs: options.warmupS * 1000, record: false });
        say(
          `  warm-up ${name.padEnd(12)} ${fixed(warm.requests / (warm.elapsedMs / 1000), 0)} req/s, ${warm.errors} errors${sent ? ` (after recording ${sent} requests)` : ''}`,
        );
      }
    }
    const recorded = await replay.counters(true);
    say(`  recorded ${recorded.recorded} subgraph answers (${mib(recorded.recordedBytes)} MiB)`);

    const rounds = new Map<GatewayName, Round[]>(options.gateways.map((n) => [n, []]));
    const runs = new Map<GatewayName, LoadRun[]>(options.gateways.map((n) => [n, []]));
    const durationMs = options.roundS * 1000;
    for (let round = 0; round < options.rounds; round++) {
      // Rotate who goes first, so slow drift (GC, caches, other load) favours no one.
      const order = options.gateways.map((_, i) => options.gateways[(i + round) % options.gateways.length]);
      for (const name of order) {
        const gateway = gateways.get(name)!;
        await replay.counters(true);
        const loadSide = [replay.pid, load.pid, process.pid];
        const [gw0, ...side0] = await Promise.all([cpuSeconds(gateway.pid), ...loadSide.map(cpuSeconds)]);
        const run = await load.run(targets.get(name)!, { concurrency: options.concurrency, durationMs });
        const [gw1, ...side1] = await Promise.all([cpuSeconds(gateway.pid), ...loadSide.map(cpuSeconds)]);
        const counters: ReplayCounters = await replay.counters(true);
        const stats = await procStats(gateway.pid);
        const seconds = run.elapsedMs / 1000;
        const latency = distribution(run.latenciesMs);
        const subgraphTotal = Object.values(counters.requests).reduce((a, b) => a + b, 0);
        const sideCpu = side0.every((v) => v !== null) && side1.every((v) => v !== null) ? side1.reduce((a, b, i) => a! + b! - side0[i]!, 0)! : null;
        const r: Round = {
          round: round + 1,
          requests: run.requests,
          errors: run.errors,
          errorSamples: run.errorSamples,
          seconds,
          requestsPerSecond: run.requests / seconds,
          p50Ms: latency.p50,
          p99Ms: latency.p99,
          cpuMsPerRequest: gw0 !== null && gw1 !== null && run.requests ? ((gw1 - gw0) * 1000) / run.requests : null,
          gatewayCpuPercent: gw0 !== null && gw1 !== null ? ((gw1 - gw0) / seconds) * 100 : null,
          loadSideCpuPercent: sideCpu === null ? null : (sideCpu / seconds) * 100,
          subgraphRequests: counters.requests,
          subgraphRequestsPerRequest: run.requests ? subgraphTotal / run.requests : Number.NaN,
          misses: counters.misses,
          peakRssBytes: stats.peakRssBytes,
        };
        rounds.get(name)!.push(r);
        runs.get(name)!.push(run);
        say(
          `  round ${round + 1} ${name.padEnd(12)} ${fixed(r.requestsPerSecond, 0)} req/s, p99 ${fixed(r.p99Ms, 1)} ms, ${fixed(r.cpuMsPerRequest ?? Number.NaN, 3)} CPU ms/req, ${fixed(r.subgraphRequestsPerRequest, 2)} subgraph req/req, ${r.errors} errors, ${r.misses} misses`,
        );
      }
    }

    const results: GatewayResult[] = [];
    for (const name of options.gateways) {
      const rs = rounds.get(name)!;
      const requests = rs.reduce((n, r) => n + r.requests, 0);
      const bySubgraph: Record<string, number> = {};
      for (const r of rs) for (const [sub, n] of Object.entries(r.subgraphRequests)) bySubgraph[sub] = (bySubgraph[sub] ?? 0) + n;
      const gateway = gateways.get(name)!;
      results.push({
        gateway: name,
        description: GATEWAY_DESCRIPTIONS[name],
        pid: gateway.pid,
        cpus: await allowedCpus(gateway.pid),
        rounds: rs,
        requestsPerSecond: spread(rs.map((r) => r.requestsPerSecond)),
        p50Ms: spread(rs.map((r) => r.p50Ms)),
        p99Ms: spread(rs.map((r) => r.p99Ms)),
        cpuMsPerRequest: spread(rs.map((r) => r.cpuMsPerRequest)),
        subgraphRequestsPerRequest: spread(rs.map((r) => r.subgraphRequestsPerRequest)),
        subgraphRequestsPerRequestBySubgraph: Object.fromEntries(Object.entries(bySubgraph).map(([sub, n]) => [sub, requests ? n / requests : Number.NaN])),
        gatewayCpuPercent: spread(rs.map((r) => r.gatewayCpuPercent)),
        loadSideCpuPercent: spread(rs.map((r) => r.loadSideCpuPercent)),
        peakRssBytes: spread(rs.map((r) => r.peakRssBytes)),
        errorsPerRound: spread(rs.map((r) => r.errors)),
        errors: rs.reduce((n, r) => n + r.errors, 0),
        errorSamples: [...new Set(rs.flatMap((r) => r.errorSamples))].slice(0, 5),
        misses: rs.reduce((n, r) => n + r.misses, 0),
        overall: summarize(runs.get(name)!),
      });
    }
    const final = await replay.counters();
    return {
      workload: workload.name,
      description: WORKLOAD_DESCRIPTIONS[workload.name],
      distinctBodies: workload.bodies.length,
      recorded: final.recorded,
      recordedBytes: final.recordedBytes,
      sameDataAcrossGateways: sameData,
      gateways: results,
    };
  } finally {
    await Promise.all([...gateways.values()].map((g) => g.stop()));
    await replay.close();
  }
}

const HEADER = [
  'workload',
  'gateway',
  'req/s',
  'p50 ms',
  'p99 ms',
  'CPU ms/req',
  'subgraph req/req',
  'peak RSS MiB',
  'errors',
  'misses',
  'gw CPU %',
  'load side CPU %',
];

function rowsOf(result: WorkloadResult): string[][] {
  return result.gateways.map((g) => [
    result.workload,
    g.gateway,
    cell(g.requestsPerSecond, 0),
    cell(g.p50Ms, 1),
    cell(g.p99Ms, 1),
    cell(g.cpuMsPerRequest, 3),
    cell(g.subgraphRequestsPerRequest, 2),
    cellMib(g.peakRssBytes),
    cell(g.errorsPerRound, 0),
    String(g.misses),
    cell(g.gatewayCpuPercent, 0),
    cell(g.loadSideCpuPercent, 0),
  ]);
}

/** The gateway-bound bench; `args` without `--stack`. */
export async function main(args: readonly string[]): Promise<number> {
  const options = parseOptions(args);
  const placement = place();
  const runId = randomBytes(3).toString('hex');
  const say = (line: string) => console.log(line);
  const perWorkloadS = options.gateways.length * (options.warmupS + options.rounds * options.roundS + 90) + 180;
  const guard = watchdog(perWorkloadS * options.workloads.length * 1000, killGateways);
  const interrupt = () => {
    killGateways();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'swiftcart-bench-gateway-'));
  let load: LoadGenerator | undefined;
  try {
    say(placement.note);
    say(
      `${options.gateways.join(', ')} × ${options.workloads.join(', ')}: ${options.concurrency} in flight, ${options.rounds} × ${options.roundS} s per gateway after ${options.warmupS} s warm-up`,
    );
    const codeAtStart = codeVersion();
    say(
      `code: ${codeAtStart.commit ?? 'not a git checkout'}${codeAtStart.uncommitted.length ? ` with uncommitted changes (${codeAtStart.uncommitted.join(', ')})` : ''}`,
    );
    load = await LoadGenerator.start();
    const results: WorkloadResult[] = [];
    for (const name of options.workloads) {
      try {
        const result = await runWorkload(workloadOf(name, options), options, placement, load, tmp, runId, say);
        results.push(result);
        say(`\n${table([HEADER, ...rowsOf(result)])}\n`);
      } catch (error) {
        if (!(error instanceof NotReady)) throw error;
        console.error(`bench gateway: ${error.message}`);
        return 1;
      }
    }

    say(`\n${table([HEADER, ...results.flatMap(rowsOf)])}\n`);
    say(
      'median (min–max) over rounds. CPU ms/req and gw CPU %: the gateway process (/proc/<pid>/stat); peak RSS: its VmHWM after each round; errors: per round; misses: total over the rounds, subgraph requests not answered from a recording; load side CPU %: replay server + load generator + bench, on the other core',
    );
    for (const r of results) {
      for (const g of r.gateways) {
        const by = Object.entries(g.subgraphRequestsPerRequestBySubgraph)
          .map(([sub, n]) => `${sub} ${fixed(n, 2)}`)
          .join(', ');
        say(`  ${r.workload} ${g.gateway}: subgraph requests per request: ${by}${g.errors ? `; errors, e.g. ${g.errorSamples.join(' | ')}` : ''}`);
      }
    }
    const codeAtEnd = codeVersion();
    if (JSON.stringify(codeAtEnd) !== JSON.stringify(codeAtStart)) {
      say(
        `note: the code changed during the run (now ${codeAtEnd.commit}${codeAtEnd.uncommitted.length ? ', uncommitted changes' : ''}): later workloads ran other gateway code`,
      );
    }
    const misses = results.reduce((n, r) => n + r.gateways.reduce((m, g) => m + g.misses, 0), 0);
    if (misses) say(`note: ${misses} subgraph requests in measured rounds were not in the recordings (forwarded to the real implementation)`);

    const result = {
      bench: 'gateway',
      mode: 'replay',
      at: new Date().toISOString(),
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model ?? null,
        memoryBytes: os.totalmem(),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
      },
      code: { atStart: codeAtStart, atEnd: codeAtEnd },
      settings: {
        gateways: options.gateways,
        workloads: options.workloads,
        concurrency: options.concurrency,
        rounds: options.rounds,
        roundSeconds: options.roundS,
        warmupSeconds: options.warmupS,
        distinct: options.distinct,
        placement: placement.note,
        oursFederationEnv: OURS_FEDERATION_ENV,
        queries: { federation: FEDERATION_QUERY, 'federation-distinct': FEDERATION_DISTINCT_QUERY, products: PRODUCTS_QUERY },
      },
      workloads: results,
      notes: [
        'subgraphs are replays: a subgraph request body seen before is answered with the bytes the real implementation returned for it the first time (bench/federation/replay.ts)',
        'every gateway runs with NODE_ENV=production; ours also counts every request in its Redis rate limits (Redis is not pinned)',
        'ours sends the gateway credential header to subgraphs (production requires SUBGRAPH_SECRET); the replay server ignores it',
      ],
    };
    const files = await writeResults('gateway', result);
    say(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    return 0;
  } finally {
    await load?.close();
    await rm(tmp, { recursive: true, force: true });
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    guard.clear();
  }
}
