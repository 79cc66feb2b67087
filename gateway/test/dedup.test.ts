/**
 * In-flight deduplication (gateway/src/dedup.ts) against real product and inventory subgraphs.
 * The gateway's subgraph client holds its calls at a gate, so a test decides which requests are in
 * flight at once, and waits on the gateway's own counters rather than on time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Config } from '@swiftcart/platform';
import { createKeepAliveFetcher } from '../src/fetcher.ts';
import { type Fetcher, type RunningGateway, startGateway } from '../src/gateway.ts';
import type { DedupCounts } from '../src/dedup.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { type GraphQLResult, type TestStack, postGraphQL, startStack } from '../../test/support/stack.ts';
import { waitFor } from '../../test/support/wait.ts';

const SKUS = ['DEDUP-1', 'DEDUP-2', 'DEDUP-3'];
const PRODUCTS = '{ products(first: 3) { edges { node { sku name stock { available } } } } }';

/** A subgraph client whose calls wait at a gate while it is held, so that a test decides what is in flight at once. */
class GatedFetcher {
  readonly calls: { readonly url: string; readonly body: string; readonly authorization: string | undefined }[] = [];
  readonly #inner = createKeepAliveFetcher();
  readonly #waiting: (() => void)[] = [];
  #held = false;

  readonly fetch: Fetcher = async (url, init = {}) => {
    this.calls.push({ url, body: String(init.body), authorization: (init.headers as Record<string, string> | undefined)?.authorization });
    if (this.#held) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.#inner(url, init);
  };

  /** New calls wait until {@link release}. */
  hold(): void {
    this.#held = true;
  }

  /** Lets the waiting calls go; with `reopen`, new calls no longer wait either. */
  release(reopen = false): void {
    if (reopen) this.#held = false;
    for (const go of this.#waiting.splice(0)) go();
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  close(): void {
    this.release(true);
    this.#inner.close();
  }
}

describe('in-flight deduplication', () => {
  let stack: TestStack;
  let admin: string;
  const opened: { gateway: RunningGateway; fetcher: GatedFetcher }[] = [];

  before(async () => {
    stack = await startStack({ services: ['product', 'inventory'] });
    await seedProducts(
      stack.services.product!.runtime.db.fork(),
      SKUS.map((sku) => ({ sku, name: `Dedup ${sku}`, description: 'dedup test', priceAmount: 1000, currency: 'EUR' })),
    );
    await seedStock(
      stack.services.inventory!.runtime.db.fork(),
      SKUS.map((sku, i) => ({ sku, onHand: 10 * (i + 1) })),
    );
    admin = await stack.token('dedup-admin', ['admin']);
  });

  after(async () => {
    for (const { gateway, fetcher } of opened) {
      fetcher.close();
      await gateway.close();
    }
    await stack?.close();
  });

  /** A gateway over the stack's subgraphs with deduplication as told, and its gated subgraph client. */
  async function gatewayWith(inbound: 'on' | 'off', subgraph: 'on' | 'off') {
    const fetcher = new GatedFetcher();
    // Batching would merge the identical entity fetches before the subgraph client could share them: off, to see deduplication alone.
    const config: Config = {
      ...stack.config,
      vars: { ...stack.config.vars, GATEWAY_DEDUP_INBOUND: inbound, GATEWAY_DEDUP_SUBGRAPH: subgraph, GATEWAY_BATCH_ENTITIES: 'off' },
    };
    const gateway = await startGateway({
      config,
      port: 0,
      fetcher: fetcher.fetch,
      subgraphUrls: { product: stack.services.product!.url, inventory: stack.services.inventory!.url },
    });
    opened.push({ gateway, fetcher });
    const send = (query: string, token?: string, variables?: Record<string, unknown>): Promise<GraphQLResult> =>
      postGraphQL(gateway.url, query, variables, token);
    const counted = (scope: keyof DedupCounts, outcome: keyof DedupCounts['inbound']) => gateway.dedup()[scope][outcome];
    const until = (probe: () => boolean, what: string) =>
      waitFor(
        () => probe() || undefined,
        what,
        15_000,
        () => ({ waiting: fetcher.waiting, calls: fetcher.calls.length, dedup: gateway.dedup() }),
        10,
      );
    return { gateway, fetcher, send, counted, until };
  }

  it('identical queries in flight share each subgraph fetch, and every caller gets the whole answer', async () => {
    const { fetcher, send, counted, until } = await gatewayWith('off', 'on');
    fetcher.hold();
    const answers = Promise.all(Array.from({ length: 5 }, () => send(PRODUCTS)));
    // The products fetch: one call goes out, the four others wait for it.
    await until(() => fetcher.waiting === 1 && counted('subgraph', 'shared') === 4, 'four fetches to share the first');
    fetcher.release();
    // Then the stock of the three products: the five entity fetches leave together, and share too.
    await until(() => fetcher.waiting === 1 && counted('subgraph', 'shared') === 8, 'the entity fetches to share the first');
    fetcher.release(true);
    const results = await answers;
    assert.equal(fetcher.calls.length, 2, 'one products fetch and one stock fetch for five queries');
    assert.equal(counted('subgraph', 'executed'), 2);
    for (const result of results) {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      assert.deepEqual(
        result.data.products.edges.map((e: { node: unknown }) => e.node),
        SKUS.map((sku, i) => ({ sku, name: `Dedup ${sku}`, stock: { available: 10 * (i + 1) } })),
      );
    }
    // Each caller parsed its own copy: changing one answer leaves the others as they were.
    results[0].data.products.edges[0].node.name = 'changed';
    assert.equal(results[1].data.products.edges[0].node.name, 'Dedup DEDUP-1');
  });

  it('callers with different Authorization headers never share a fetch', async () => {
    const { fetcher, send, counted, until } = await gatewayWith('on', 'on');
    const alice = await stack.token('alice', ['customer']);
    const bob = await stack.token('bob', ['customer']);
    fetcher.hold();
    const answers = Promise.all([alice, bob, undefined, alice, bob, undefined].map((token) => send(PRODUCTS, token)));
    // One products fetch per caller; the three repeated callers share, inbound.
    await until(() => fetcher.waiting === 3 && counted('inbound', 'shared') === 3, 'one fetch per caller');
    assert.deepEqual(fetcher.calls.map((c) => c.authorization).sort(), [`Bearer ${alice}`, `Bearer ${bob}`, undefined].sort());
    assert.equal(counted('subgraph', 'shared'), 0, 'no fetch shared across callers');
    fetcher.release(true);
    for (const result of await answers) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
  });

  it('a mutation is never shared: two identical stock adjustments in flight both apply', async () => {
    const { fetcher, send, counted, until } = await gatewayWith('on', 'on');
    const adjust = `mutation { adjustStock(sku: "${SKUS[0]}", delta: 3, reason: "dedup test") { sku onHand } }`;
    const initial = (await send('{ products(first: 1) { edges { node { stock { onHand } } } } }', admin)).data.products.edges[0].node.stock.onHand;
    fetcher.hold();
    const answers = Promise.all([send(adjust, admin), send(adjust, admin)]);
    // Shared, only one would ever reach the subgraph client and this would time out.
    await until(() => fetcher.waiting === 2, 'both mutations to reach the inventory subgraph');
    fetcher.release(true);
    const results = await answers;
    for (const result of results) assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(results.map((r) => r.data.adjustStock.onHand).sort(), [initial + 3, initial + 6]);
    assert.equal(counted('inbound', 'shared'), 0);
    assert.equal(counted('subgraph', 'shared'), 0);
  });

  it("a subgraph's error reaches every caller that shared its fetch", async () => {
    const { fetcher, send, counted, until } = await gatewayWith('off', 'on');
    const broken = '{ products(first: 2, after: "not-a-cursor") { edges { node { sku } } } }';
    const alone = await send(broken);
    assert.equal(alone.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT', JSON.stringify(alone.errors));
    fetcher.hold();
    const answers = Promise.all(Array.from({ length: 4 }, () => send(broken)));
    await until(() => fetcher.waiting === 1 && counted('subgraph', 'shared') === 3, 'three fetches to share the first');
    fetcher.release(true);
    for (const result of await answers) assert.deepEqual(result.errors, alone.errors);
  });

  it('identical inbound queries in flight share one execution and its answer; a different Accept header does not', async () => {
    const { gateway, fetcher, counted, until } = await gatewayWith('on', 'off');
    const post = (accept: string) =>
      fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ query: PRODUCTS }) });
    fetcher.hold();
    const answers = Promise.all([post('application/json'), post('application/json'), post('application/json'), post('application/graphql-response+json')]);
    await until(() => fetcher.waiting === 2 && counted('inbound', 'shared') === 2, 'two executions, two requests sharing the first');
    fetcher.release(true);
    const responses = await answers;
    const bodies = await Promise.all(responses.map((r) => r.text()));
    assert.equal(bodies[0], bodies[1]);
    assert.equal(bodies[0], bodies[2]);
    assert.deepEqual(JSON.parse(bodies[3]), JSON.parse(bodies[0]));
    assert.match(responses[0].headers.get('content-type') ?? '', /application\/json/);
    assert.match(responses[3].headers.get('content-type') ?? '', /application\/graphql-response\+json/);
    assert.equal(counted('inbound', 'executed'), 2);
  });

  it('with both switches off, nothing is shared', async () => {
    const { gateway, fetcher, send, until } = await gatewayWith('off', 'off');
    fetcher.hold();
    const answers = Promise.all(Array.from({ length: 3 }, () => send(PRODUCTS)));
    await until(() => fetcher.waiting === 3, 'three products fetches');
    fetcher.release(true);
    for (const result of await answers) assert.equal(result.errors, undefined);
    assert.equal(fetcher.calls.length, 6);
    const none = { executed: 0, shared: 0, ineligible: 0 };
    assert.deepEqual(gateway.dedup(), { inbound: none, subgraph: none });
  });
});
