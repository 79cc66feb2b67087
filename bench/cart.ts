/**
 * `npm run bench -- cart`: `myCart` with N lines (20 by default) through our gateway, over the
 * running `npm start` stack. The whole MyCart operation of schema/operations/cart.graphql is sent:
 * every line's product (product subgraph) and live stock (inventory subgraph), and the warnings
 * (the cart service asks the inventory for stock). The gateway is a fresh process of ours with
 * every edge limit on and the rate limits raised so that they count but never refuse (one customer
 * asks hundreds of times a second here); it is measured at a few concurrencies.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../platform/src/config.ts';
import { signToken } from '../platform/src/auth.ts';
import { REPO_ROOT } from '../platform/src/config.ts';
import { runSubgraphSecret } from '../scripts/infra.ts';
import { OurGateway } from './gateway.ts';
import {
  type LoadSummary,
  LoadGenerator,
  NotReady,
  UsageError,
  fixed,
  forEachFlag,
  mib,
  positiveNumber,
  summarize,
  table,
  watchdog,
  writeResults,
} from './lib.ts';

export const USAGE = `usage: npm run bench -- cart [--lines 20] [--concurrency 1,8] [--duration 15] [--warmup 3]

  --lines        lines in the measured cart (default 20; at most the cart's CART_MAX_LINES)
  --concurrency  comma-separated requests in flight, one measured run each (default 1,8)
  --duration     measured seconds per concurrency (default 15)
  --warmup       unmeasured seconds before the first run (default 3)

Needs the stack running (npm start) with the seed catalogue. Starts its own gateway beside it.`;

interface Options {
  lines: number;
  concurrencies: number[];
  durationS: number;
  warmupS: number;
}

function parseOptions(args: readonly string[]): Options {
  const options: Options = { lines: 20, concurrencies: [1, 8], durationS: 15, warmupS: 3 };
  forEachFlag(args, (name, value) => {
    switch (name) {
      case '--lines':
        options.lines = positiveNumber(name, value(), { integer: true, max: 100 });
        break;
      case '--concurrency':
        options.concurrencies = value()
          .split(',')
          .map((v) => positiveNumber(name, v, { integer: true, max: 1024 }));
        break;
      case '--duration':
        options.durationS = positiveNumber(name, value(), { max: 3600 });
        break;
      case '--warmup': {
        const v = value();
        options.warmupS = v === '0' ? 0 : positiveNumber(name, v, { max: 600 });
        break;
      }
      default:
        throw new UsageError(`unknown option "${name}"`);
    }
  });
  return options;
}

/** Runs one operation at `url` and returns its data; any error stops the bench with a reason. */
async function call(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await response.json().catch(() => null)) as { data?: any; errors?: unknown[] } | null;
  if (!json || json.errors?.length) throw new NotReady(`${query.slice(0, 60)}… failed: ${JSON.stringify(json?.errors ?? response.status).slice(0, 300)}`);
  return json.data;
}

export async function main(args: readonly string[]): Promise<number> {
  const options = parseOptions(args);
  const config = loadConfig();
  const subgraphSecret = runSubgraphSecret();
  if (!subgraphSecret) {
    console.error('bench cart: no SUBGRAPH_SECRET: start the stack with `npm start` first (it records its secret in .data/run/), or set SUBGRAPH_SECRET');
    return 1;
  }
  const operations = readFileSync(path.join(REPO_ROOT, 'schema', 'operations', 'cart.graphql'), 'utf8');
  const orderFragments = readFileSync(path.join(REPO_ROOT, 'schema', 'operations', 'orders.graphql'), 'utf8');
  // The document holds every cart operation (and the order fragments Checkout needs): the gateway parses it all, as a client's persisted document would be.
  const document = `${operations}\n${orderFragments}`;
  const customer = `bench-cart-${Date.now().toString(36)}`;
  const token = await signToken(config.jwtSecret, { sub: customer, roles: ['customer'] }, '1h');
  let gateway: OurGateway | undefined;
  let load: LoadGenerator | undefined;
  const guard = watchdog((options.warmupS + options.durationS * options.concurrencies.length + 120) * 1000, () => gateway?.child.kill('SIGKILL'));
  try {
    try {
      gateway = await OurGateway.start(true, subgraphSecret);
      const { products } = await call(gateway.url, token, `query ($first: Int!) { products(first: $first) { edges { node { sku } } } }`, {
        first: options.lines,
      });
      const skus: string[] = products.edges.map((e: { node: { sku: string } }) => e.node.sku);
      if (skus.length < options.lines) throw new NotReady(`the catalogue has ${skus.length} products, the cart needs ${options.lines}: run \`npm run seed\``);
      await call(gateway.url, token, 'mutation { clearCart { itemCount } }');
      for (const [i, sku] of skus.entries())
        await call(gateway.url, token, 'mutation ($sku: ID!, $q: Int!) { addToCart(sku: $sku, quantity: $q) { itemCount } }', { sku, q: 1 + (i % 3) });
    } catch (error) {
      if (error instanceof NotReady) {
        console.error(`bench cart: ${error.message}`);
        return 1;
      }
      throw error;
    }
    load = await LoadGenerator.start();
    const target = {
      name: 'myCart',
      url: gateway.url,
      body: { query: document, operationName: 'MyCart' },
      headers: { authorization: `Bearer ${token}` },
      expect: { path: ['data', 'myCart', 'items'], length: options.lines },
    };
    console.log(`myCart with ${options.lines} lines (product, price, stock, warnings) through our gateway at ${gateway.url}`);
    if (options.warmupS > 0) {
      const warm = await load.run(target, { concurrency: 1, durationMs: options.warmupS * 1000, record: false });
      console.log(`  warm-up ${fixed(warm.requests / (warm.elapsedMs / 1000), 0)} req/s, ${warm.errors} errors`);
    }
    const results: { concurrency: number; summary: LoadSummary; gatewayRssBytes: number | null }[] = [];
    for (const concurrency of options.concurrencies) {
      const run = await load.run(target, { concurrency, durationMs: options.durationS * 1000 });
      const summary = summarize([run]);
      const stats = await gateway.stats();
      results.push({ concurrency, summary, gatewayRssBytes: stats.maxRssBytes });
      if (summary.errors) console.log(`  ${concurrency} in flight: ${summary.errors} errors, e.g. ${summary.errorSamples.join('; ')}`);
    }
    await call(gateway.url, token, 'mutation { clearCart { itemCount } }');
    const rows = [
      ['in flight', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'gateway peak RSS MiB'],
      ...results.map(({ concurrency, summary, gatewayRssBytes }) => [
        String(concurrency),
        fixed(summary.requestsPerSecond, 0),
        fixed(summary.latencyMs.p50, 2),
        fixed(summary.latencyMs.p90, 2),
        fixed(summary.latencyMs.p99, 2),
        fixed(summary.latencyMs.max, 2),
        String(summary.errors),
        mib(gatewayRssBytes),
      ]),
    ];
    console.log(`\n${table(rows)}\n`);
    const files = await writeResults('cart', {
      bench: 'cart',
      at: new Date().toISOString(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, memoryBytes: os.totalmem(), node: process.version },
      settings: { lines: options.lines, durationSecondsPerRun: options.durationS, warmupSeconds: options.warmupS, operation: 'MyCart' },
      goal: { p99Ms: 20, lines: 20 },
      runs: results.map(({ concurrency, summary, gatewayRssBytes }) => ({ concurrency, ...summary, gatewayPeakRssBytes: gatewayRssBytes })),
      notes: [
        'our gateway with every edge limit on, rate limits counting but never refusing; load generator, subgraphs, databases and Redis on the same machine',
      ],
    });
    console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    return 0;
  } finally {
    await load?.close();
    await gateway?.stop();
    guard.clear();
  }
}
