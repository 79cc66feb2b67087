/**
 * `npm run demo`: one order through the running platform (`npm start`), shown as it happens.
 * It places an order with the typed SDK, follows it live through the `orderUpdated` subscription
 * and prints the saga's Kafka events (topic, key, type) as they flow. At the end it prints the
 * order's timeline and the stock before and after.
 *
 *   npm run demo -- [--sku SKU-0001] [--quantity 1] [--payment tok_visa|tok_decline] [--timeout 60] [--url URL]
 *
 * Exit codes: 0 when the order settled, 1 when the platform is not running or the order did not
 * settle within the timeout, 2 for bad arguments.
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type SwiftCartClient, createClient, isSwiftCartError } from '@swiftcart/sdk';
import { type Config, isMain, loadConfig } from '@swiftcart/platform/config';
import { signToken } from '@swiftcart/platform/auth';
import { createLogger } from '@swiftcart/platform/logger';
import { createKafka } from '@swiftcart/platform/kafka';
import { EVENT_TYPE_HEADER, eventsTopic } from '@swiftcart/platform/events';

/** The services whose events make up an order's saga. */
const SAGA_SOURCES = ['order', 'inventory', 'payment', 'shipment'] as const;
/** Order statuses after which the saga has nothing left to do without an admin. */
const SETTLED = new Set(['CONFIRMED', 'CANCELLED', 'REJECTED', 'SHIPPED', 'DELIVERED']);
/** A confirmed order is done once its shipment exists; events after that would need an admin. */
const QUIET_AFTER_SETTLED_MS = 1_500;
/** The customer the demo orders as. */
export const DEMO_CUSTOMER = 'demo-customer';

const USAGE = `usage: npm run demo -- [--sku SKU] [--quantity N] [--payment tok_visa|tok_decline] [--timeout SECONDS] [--url URL]

Places one order against the running platform (start it with \`npm start\`), shows its status changes
live (orderUpdated subscription) and its saga's Kafka events, then its timeline and the stock.

  --sku       the sku to order (default: the first product with stock)
  --quantity  units, 1 to 1000 (default 1)
  --payment   tok_visa (authorised, default) or tok_decline (declined: the stock comes back)
  --timeout   seconds to wait for the order to settle (default 60)
  --url       the gateway's GraphQL endpoint (default http://HOST:GATEWAY_PORT/graphql)`;

/** What a demo run needs; everything has a default from the environment. */
export interface DemoOptions {
  readonly config: Config;
  readonly url: string;
  readonly sku?: string;
  readonly quantity: number;
  readonly payment: string;
  readonly timeoutMs: number;
  /** Where lines go (stdout by default). */
  readonly print: (line: string) => void;
  /** Progress that replaces itself on a terminal; plain lines elsewhere. */
  readonly progress?: (line: string) => void;
}

/** What the run saw, for its caller (and the test). */
export interface DemoResult {
  readonly orderId: string;
  readonly statuses: readonly string[];
  readonly events: readonly { topic: string; key: string; type: string }[];
  readonly timeline: readonly { status: string; eventType: string | null }[];
  readonly stockBefore: number;
  readonly stockAfter: number;
  readonly finalStatus: string;
}

/** A failure a person can act on: printed without a stack, exit code 1. */
export class DemoError extends Error {
  override name = 'DemoError';
}

const elapsed = (start: number) => `${((performance.now() - start) / 1000).toFixed(1).padStart(5)} s`;

async function pickSku(client: SwiftCartClient, quantity: number): Promise<string> {
  let after: string | null | undefined;
  for (let page = 0; page < 20; page++) {
    const { products } = await client.browseProducts({ first: 50, after });
    const found = products.edges.find(({ node }) => node.status === 'ACTIVE' && node.stock.available >= quantity);
    if (found) return found.node.sku;
    if (!products.pageInfo.hasNextPage) break;
    after = products.pageInfo.endCursor;
  }
  throw new DemoError(`No product has ${quantity} unit(s) available: run \`npm run seed\`, or pass --sku`);
}

async function availableOf(client: SwiftCartClient, sku: string): Promise<number> {
  const { product } = await client.product({ sku });
  if (!product) throw new DemoError(`There is no product "${sku}"`);
  return product.stock.available;
}

/** Runs the demo against the gateway at `options.url`. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { config, print } = options;
  const progress = options.progress ?? print;
  const start = performance.now();
  const token = await signToken(config.jwtSecret, { sub: DEMO_CUSTOMER, roles: ['customer'] }, '1h');
  const client = createClient({ url: options.url, token });
  const kafka = createKafka(config, createLogger('demo', 'error'), 'swiftcart-demo');
  try {
    progress(`checking the gateway at ${options.url} ...`);
    try {
      await client.browseProducts({ first: 1 });
    } catch (error) {
      throw new DemoError(`The platform does not answer at ${options.url} (${(error as Error).message}). Start it with \`npm start\` in another terminal.`);
    }
    const sku = options.sku ?? (await pickSku(client, options.quantity));
    const stockBefore = await availableOf(client, sku);
    print(`Ordering ${options.quantity} × ${sku} as "${DEMO_CUSTOMER}" with ${options.payment}; available before: ${stockBefore}`);

    const { placeOrder } = await client.placeOrder({
      input: {
        idempotencyKey: randomUUID(),
        items: [{ sku, quantity: options.quantity }],
        shippingAddress: { name: 'Demo Customer', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' },
        paymentMethod: options.payment,
      },
    });
    const orderId = placeOrder.id;
    print(`${elapsed(start)}  placed order ${orderId} (${placeOrder.status}, total ${placeOrder.total.amount / 100} ${placeOrder.total.currency})`);
    print('');
    print('  time      source                      what');

    const statuses: string[] = [];
    const events: { topic: string; key: string; type: string }[] = [];
    let lastActivity = performance.now();
    let settled = false;
    let finalStatus = placeOrder.status as string;

    // The saga's events: every topic from its start, keeping only this order's key. Reading from the
    // start means none is missed while the consumer group is still joining.
    const topics = SAGA_SOURCES.map(eventsTopic);
    const tail = await kafka.consume(
      `demo.${randomUUID()}`,
      topics,
      async (message) => {
        if (message.key !== orderId) return;
        const type = message.headers[EVENT_TYPE_HEADER] ?? '?';
        const topic = message.topic.slice(config.kafkaTopicPrefix.length);
        events.push({ topic, key: message.key, type });
        lastActivity = performance.now();
        print(`${elapsed(start)}  kafka ${topic.padEnd(20)} key ${message.key.slice(0, 8)}…  ${type}`);
      },
      { fromBeginning: true, maxWaitTimeInMs: 100 },
    );

    const updates = client.orderUpdated({ id: orderId });
    const follow = (async () => {
      for await (const { orderUpdated } of updates) {
        lastActivity = performance.now();
        const detail = [
          orderUpdated.payment ? `payment ${orderUpdated.payment.status}` : '',
          orderUpdated.shipment ? `shipment ${orderUpdated.shipment.status}` : '',
        ]
          .filter(Boolean)
          .join(', ');
        if (statuses.at(-1) !== orderUpdated.status) statuses.push(orderUpdated.status);
        finalStatus = orderUpdated.status;
        print(
          `${elapsed(start)}  live  orderUpdated             v${String(orderUpdated.version).padEnd(3)}      ${orderUpdated.status}${detail ? ` (${detail})` : ''}`,
        );
        const done = orderUpdated.status !== 'CONFIRMED' || orderUpdated.shipment !== null;
        if (SETTLED.has(orderUpdated.status) && done) settled = true;
      }
    })();

    const deadline = performance.now() + options.timeoutMs;
    let ticks = 0;
    while (!(settled && performance.now() - lastActivity > QUIET_AFTER_SETTLED_MS)) {
      if (performance.now() > deadline) {
        throw new DemoError(`Order ${orderId} did not settle within ${options.timeoutMs / 1000} s (last status ${finalStatus}); see .data/logs/`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      if (++ticks % 20 === 0) progress(`${elapsed(start)}  … waiting for the saga (status ${finalStatus}, ${events.length} events so far)`);
    }
    await updates.return?.();
    await follow;
    await tail.stop();

    const { order } = await client.order({ id: orderId });
    const stockAfter = await availableOf(client, sku);
    print('');
    print(`Timeline of order ${orderId}:`);
    for (const step of order!.timeline) {
      print(`  ${step.at}  ${step.status.padEnd(16)} ${step.eventType ?? '(command)'}${step.reason ? `  ${step.reason}` : ''}`);
    }
    print('');
    print(`Stock of ${sku}: available ${stockBefore} before, ${stockAfter} after (${stockAfter - stockBefore >= 0 ? '+' : ''}${stockAfter - stockBefore})`);
    print(`Final status: ${order!.status}; ${events.length} saga events on Kafka; ${elapsed(start).trim()} in all`);
    return {
      orderId,
      statuses,
      events,
      timeline: order!.timeline.map((t) => ({ status: t.status, eventType: t.eventType ?? null })),
      stockBefore,
      stockAfter,
      finalStatus: order!.status,
    };
  } finally {
    await client.close();
    await kafka.close();
  }
}

/** The command line: parses flags, runs, maps failures to exit codes. */
export async function main(argv: readonly string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        sku: { type: 'string' },
        quantity: { type: 'string', default: '1' },
        payment: { type: 'string', default: 'tok_visa' },
        timeout: { type: 'string', default: '60' },
        url: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`demo: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const quantity = Number(values.quantity);
  const timeout = Number(values.timeout);
  if (!Number.isInteger(quantity) || quantity < 1 || quantity > 1000) {
    console.error(`demo: --quantity must be a whole number from 1 to 1000, got "${values.quantity}"\n\n${USAGE}`);
    return 2;
  }
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) {
    console.error(`demo: --timeout must be 1 to 3600 seconds, got "${values.timeout}"\n\n${USAGE}`);
    return 2;
  }
  const config = loadConfig();
  const url = (values.url as string | undefined) ?? `http://${config.host}:${config.gatewayPort}/graphql`;
  const tty = process.stdout.isTTY;
  try {
    await runDemo({
      config,
      url,
      sku: values.sku as string | undefined,
      quantity,
      payment: values.payment as string,
      timeoutMs: timeout * 1000,
      print: (line) => console.log(tty ? `\r\x1b[K${line}` : line),
      progress: tty ? (line) => process.stdout.write(`\r\x1b[K${line}`) : (line) => console.log(line),
    });
    return 0;
  } catch (error) {
    if (error instanceof DemoError) console.error(`\ndemo: ${error.message}`);
    else if (isSwiftCartError(error)) console.error(`\ndemo: the API refused: ${error.code}: ${error.message}`);
    else console.error(error);
    return 1;
  }
}

if (isMain(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
