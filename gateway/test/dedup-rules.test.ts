/**
 * What may share (gateway/src/dedup.ts), without a network: which subgraph fetches and which
 * inbound requests are eligible, and what makes two of them the same.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeaderMap, type HTTPGraphQLResponse } from '@apollo/server';
import type { GraphQLHttpCall } from '@swiftcart/platform/http';
import { DedupStats, inboundSharing, sharingFetcher } from '../src/dedup.ts';
import type { Fetcher } from '../src/fetcher.ts';

/** An inner fetcher whose calls stay pending until the test settles them. */
function pendingFetcher() {
  const calls: { url: string; body: string; settle: (status: number) => void; fail: (error: Error) => void }[] = [];
  const fetcher: Fetcher = (url, init = {}) =>
    new Promise((resolve, reject) => {
      calls.push({
        url,
        body: String(init.body),
        settle: (status) => resolve(new Response(`{"data":{"n":${calls.length}}}`, { status, headers: { 'content-type': 'application/json' } }) as never),
        fail: reject,
      });
    });
  return { fetcher, calls };
}

const post = (body: string, headers: Record<string, string> = {}) => ({ method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('subgraph fetches', () => {
  it('shares a query fetch with the same URL, headers and body; each caller reads its own copy', async () => {
    const stats = new DedupStats();
    const { fetcher, calls } = pendingFetcher();
    const sharing = sharingFetcher(fetcher, stats);
    const body = JSON.stringify({ query: 'query Q__product__0{products{sku}}', variables: {} });
    const a = sharing('http://p/graphql', post(body));
    const b = sharing('http://p/graphql', post(body));
    assert.equal(calls.length, 1);
    calls[0].settle(200);
    const [ra, rb] = await Promise.all([a, b]);
    assert.deepEqual(await ra.json(), await rb.json());
    assert.deepEqual(stats.counts.subgraph, { executed: 1, shared: 1, ineligible: 0 });
    // Settled: the next identical fetch goes out again (nothing is cached).
    const c = sharing('http://p/graphql', post(body));
    assert.equal(calls.length, 2);
    calls[1].settle(200);
    await c;
  });

  it('anonymous queries are shared; mutations and bodies written otherwise never are', () => {
    const stats = new DedupStats();
    const { fetcher, calls } = pendingFetcher();
    const sharing = sharingFetcher(fetcher, stats);
    const twice = (body: string) => {
      void sharing('http://p/graphql', post(body)).catch(() => undefined);
      void sharing('http://p/graphql', post(body)).catch(() => undefined);
    };
    twice(JSON.stringify({ query: '{products{sku}}' }));
    twice(JSON.stringify({ query: 'query($representations:[_Any!]!){_entities(representations:$representations){__typename}}', variables: {} }));
    assert.equal(calls.length, 2);
    twice(JSON.stringify({ query: 'mutation M__order__0{placeOrder{id}}' }));
    twice(JSON.stringify({ variables: {}, query: '{products{sku}}' }));
    twice(JSON.stringify({ query: 'queryX{a}' }));
    assert.equal(calls.length, 8);
    assert.deepEqual(stats.counts.subgraph, { executed: 2, shared: 2, ineligible: 6 });
  });

  it('never shares across URLs or forwarded headers, nor a call with its own abort signal', () => {
    const stats = new DedupStats();
    const { fetcher, calls } = pendingFetcher();
    const sharing = sharingFetcher(fetcher, stats);
    const body = JSON.stringify({ query: '{products{sku}}' });
    void sharing('http://p/graphql', post(body, { authorization: 'Bearer a' }));
    void sharing('http://p/graphql', post(body, { authorization: 'Bearer b' }));
    void sharing('http://q/graphql', post(body, { authorization: 'Bearer a' }));
    void sharing('http://p/graphql', { ...post(body, { authorization: 'Bearer a' }), signal: new AbortController().signal });
    assert.equal(calls.length, 4);
    assert.equal(stats.counts.subgraph.shared, 0);
  });

  it('a failure reaches every caller that shared the fetch', async () => {
    const stats = new DedupStats();
    const { fetcher, calls } = pendingFetcher();
    const sharing = sharingFetcher(fetcher, stats);
    const body = JSON.stringify({ query: '{products{sku}}' });
    const all = [1, 2, 3].map(() => sharing('http://p/graphql', post(body)));
    calls[0].fail(new Error('request to http://p/graphql failed: ECONNREFUSED'));
    for (const result of await Promise.allSettled(all)) {
      assert.equal(result.status, 'rejected');
      assert.match((result as PromiseRejectedResult).reason.message, /ECONNREFUSED/);
    }
  });
});

describe('inbound requests', () => {
  const answer = (text: string): HTTPGraphQLResponse => ({
    status: 200,
    headers: new HeaderMap([['content-type', 'application/json']]),
    body: { kind: 'complete', string: text },
  });
  const call = (body: unknown, headers: Record<string, string> = {}, method = 'POST'): GraphQLHttpCall => ({
    request: { method, headers: new HeaderMap(Object.entries({ 'content-type': 'application/json', ...headers })), search: '', body },
    text: body === undefined ? '' : JSON.stringify(body),
    req: {} as never,
  });

  /** Sends `first` then `second` while the first is in flight; resolves to how many executions ran. */
  async function overlapping(first: GraphQLHttpCall, second: GraphQLHttpCall): Promise<number> {
    const share = inboundSharing({ stats: new DedupStats() });
    let executions = 0;
    let finish!: () => void;
    const gate = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const execute = async () => {
      executions++;
      await gate;
      return answer(`{"data":{"n":${executions}}}`);
    };
    const a = share(first, execute);
    const b = share(second, execute);
    finish();
    await Promise.all([a, b]);
    return executions;
  }

  const products = { query: '{ products { sku } }' };

  it('shares the same single query with the same credentials and Accept header', async () => {
    assert.equal(await overlapping(call(products), call(products)), 1);
    assert.equal(await overlapping(call(products, { authorization: 'Bearer a' }), call(products, { authorization: 'Bearer a' })), 1);
  });

  it('does not share across credentials, Accept headers or variables', async () => {
    assert.equal(await overlapping(call(products, { authorization: 'Bearer a' }), call(products, { authorization: 'Bearer b' })), 2);
    assert.equal(await overlapping(call(products, { authorization: 'Bearer a' }), call(products)), 2);
    assert.equal(await overlapping(call(products, { accept: 'application/json' }), call(products, { accept: 'application/graphql-response+json' })), 2);
    const byId = (id: string) => ({ query: 'query O($id: ID!) { order(id: $id) { id } }', variables: { id } });
    assert.equal(await overlapping(call(byId('a')), call(byId('b'))), 2);
  });

  it('never shares a mutation, even one named in a document that also holds a query', async () => {
    const document = 'query Read { products { sku } } mutation Write { clearCart { id } }';
    assert.equal(await overlapping(call({ query: document, operationName: 'Write' }), call({ query: document, operationName: 'Write' })), 2);
    assert.equal(await overlapping(call({ query: document, operationName: 'Read' }), call({ query: document, operationName: 'Read' })), 1);
    // Without a name, Apollo refuses a document of two operations: each caller gets its own refusal.
    assert.equal(await overlapping(call({ query: document }), call({ query: document })), 2);
    const mutation = { query: 'mutation { clearCart { id } }' };
    assert.equal(await overlapping(call(mutation), call(mutation)), 2);
  });

  it('leaves unparsable documents, batches and GET requests to run alone', async () => {
    const broken = { query: '{ products { ' };
    assert.equal(await overlapping(call(broken), call(broken)), 2);
    assert.equal(await overlapping(call([products, products]), call([products, products])), 2);
    assert.equal(await overlapping(call(undefined, {}, 'GET'), call(undefined, {}, 'GET')), 2);
  });

  it('a request that waited for a streamed answer runs itself', async () => {
    const stats = new DedupStats();
    const share = inboundSharing({ stats });
    let executions = 0;
    const streamed = async (): Promise<HTTPGraphQLResponse> => {
      executions++;
      await Promise.resolve();
      return {
        status: 200,
        headers: new HeaderMap(),
        body: {
          kind: 'chunked',
          asyncIterator: (async function* () {
            yield '--';
          })(),
        },
      };
    };
    await Promise.all([share(call(products), streamed), share(call(products), streamed)]);
    assert.equal(executions, 2);
    assert.deepEqual(stats.counts.inbound, { executed: 1, shared: 0, ineligible: 1 });
  });
});
