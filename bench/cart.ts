/**
 * `npm run bench -- cart`: `myCart` with N lines (20 by default) through our gateway, over the
 * running `npm start` stack. The whole MyCart operation of schema/operations/cart.graphql is sent:
 * every line's product (product subgraph) and live stock (inventory subgraph), and the warnings
 * (the cart service asks the inventory for stock). The gateway is a fresh process of ours with
 * every edge limit on and the rate limits raised so that they count but never refuse (one customer
 * asks hundreds of times a second here); it is measured at a few concurrencies, in rounds that
 * alternate with two references: `{ __typename }` (the gateway alone) and `products(first: 20)`
 * with name, price and stock (the same fan-out to product and inventory, without the cart).
 */
import { print } from 'graphql';
import { MyCartDocument, type SwiftCartClient, createClient, isSwiftCartError } from '@swiftcart/sdk';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../platform/src/config.ts';
import { signToken } from '../platform/src/auth.ts';
import { runSubgraphSecret } from '../scripts/infra.ts';
import { OurGateway } from './gateway.ts';
import {
  type LoadRun,
  type LoadSummary,
  type LoadTarget,
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
  --duration     measured seconds per operation and concurrency, in 3 alternating rounds (default 15)
  --warmup       unmeasured seconds before the first run (default 3)

Needs the stack running (npm start) with the seed catalogue. Starts its own gateway beside it.`;

/** Alternating rounds per concurrency, each a third of `--duration` per operation. */
const ROUNDS = 3;

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

export async function main(args: readonly string[]): Promise<number> {
  const options = parseOptions(args);
  const config = loadConfig();
  const subgraphSecret = runSubgraphSecret();
  if (!subgraphSecret) {
    console.error('bench cart: no SUBGRAPH_SECRET: start the stack with `npm start` first (it records its secret in .data/run/), or set SUBGRAPH_SECRET');
    return 1;
  }
  // What the SDK sends for myCart(): the MyCart operation of schema/operations/cart.graphql with its fragment.
  const document = print(MyCartDocument);
  const customer = `bench-cart-${Date.now().toString(36)}`;
  const token = await signToken(config.jwtSecret, { sub: customer, roles: ['customer'] }, '1h');
  let gateway: OurGateway | undefined;
  let shopper: SwiftCartClient | undefined;
  let load: LoadGenerator | undefined;
  // Three operations (myCart and two references) per concurrency.
  const guard = watchdog((options.warmupS + options.durationS * options.concurrencies.length * 3 + 120) * 1000, () => gateway?.child.kill('SIGKILL'));
  try {
    try {
      gateway = await OurGateway.start(true, subgraphSecret);
      // The cart is filled the way a storefront fills it: through the SDK.
      shopper = createClient({ url: gateway.url, token, retryAttempts: 0 });
      const { products } = await shopper.browseProducts({ first: options.lines });
      const skus = products.edges.map((e) => e.node.sku);
      if (skus.length < options.lines) throw new NotReady(`the catalogue has ${skus.length} products, the cart needs ${options.lines}: run \`npm run seed\``);
      await shopper.clearCart();
      for (const [i, sku] of skus.entries()) await shopper.addToCart({ sku, quantity: 1 + (i % 3) });
    } catch (error) {
      if (error instanceof NotReady || isSwiftCartError(error)) {
        console.error(`bench cart: ${(error as Error).message} (is the stack running, \`npm start\`?)`);
        return 1;
      }
      throw error;
    }
    load = await LoadGenerator.start();
    const headers = { authorization: `Bearer ${token}` };
    // The references, measured beside myCart in the same rounds: what the gateway costs alone, and
    // the same fan-out (product and inventory for 20 skus) without the cart's hop in front.
    const targets: LoadTarget[] = [
      { name: 'myCart', url: gateway.url, body: { query: document }, headers, expect: { path: ['data', 'myCart', 'items'], length: options.lines } },
      {
        name: 'products (reference)',
        url: gateway.url,
        body: {
          query: `query Products($first: Int!) { products(first: $first) { edges { node { sku name price { amount currency } stock { available } } } } }`,
          variables: { first: options.lines },
        },
        headers,
        expect: { path: ['data', 'products', 'edges'], length: options.lines },
      },
      { name: '__typename (reference)', url: gateway.url, body: { query: '{ __typename }' }, headers },
    ];
    console.log(`myCart with ${options.lines} lines (product, price, stock, warnings) through our gateway at ${gateway.url}, beside two references`);
    if (options.warmupS > 0) {
      for (const target of targets) {
        const warm = await load.run(target, { concurrency: 1, durationMs: (options.warmupS * 1000) / targets.length, record: false });
        console.log(`  warm-up ${target.name.padEnd(24)} ${fixed(warm.requests / (warm.elapsedMs / 1000), 0)} req/s, ${warm.errors} errors`);
      }
    }
    const results: { target: string; concurrency: number; summary: LoadSummary; gatewayRssBytes: number | null }[] = [];
    for (const concurrency of options.concurrencies) {
      // Rounds alternate between the operations, so drift on the machine favours none of them.
      const runs = new Map<string, LoadRun[]>(targets.map((t) => [t.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const target of targets) runs.get(target.name)!.push(await load.run(target, { concurrency, durationMs: (options.durationS * 1000) / ROUNDS }));
      }
      const stats = await gateway.stats();
      for (const target of targets) {
        const summary = summarize(runs.get(target.name)!);
        results.push({ target: target.name, concurrency, summary, gatewayRssBytes: stats.maxRssBytes });
        if (summary.errors) console.log(`  ${target.name}, ${concurrency} in flight: ${summary.errors} errors, e.g. ${summary.errorSamples.join('; ')}`);
      }
    }
    await shopper!.clearCart();
    const rows = [
      ['operation', 'in flight', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'gateway peak RSS MiB'],
      ...results.map(({ target, concurrency, summary, gatewayRssBytes }) => [
        target,
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
      runs: results.map(({ target, concurrency, summary, gatewayRssBytes }) => ({
        operation: target,
        concurrency,
        ...summary,
        gatewayPeakRssBytes: gatewayRssBytes,
      })),
      notes: [
        'our gateway with every edge limit on, rate limits counting but never refusing; load generator, subgraphs, databases and Redis on the same machine',
      ],
    });
    console.log(`wrote ${path.relative(process.cwd(), files.file)} and ${path.relative(process.cwd(), files.latest)}`);
    return 0;
  } finally {
    await load?.close();
    await shopper?.close();
    await gateway?.stop();
    guard.clear();
  }
}
