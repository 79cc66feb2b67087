/**
 * The entity batcher: concurrent entity fetches with the same operation, credentials and headers
 * become one request, and each caller gets back exactly its own entities, errors and cache policy;
 * a merged request refused as a whole is sent again fetch by fetch.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GraphQLDataSource } from '@apollo/gateway';
import { EntityBatcher, MAX_BATCH_REPRESENTATIONS } from '../src/entity-batcher.ts';

type Options = Parameters<GraphQLDataSource['process']>[0];

const QUERY = 'query Q__product__1($representations:[_Any!]!){_entities(representations:$representations){...on Product{name}}}';

/** A subgraph that answers `_entities` from the representations it receives, failing on sku "BAD". */
function recordingSubgraph() {
  const requests: Options[] = [];
  const source: GraphQLDataSource = {
    async process(options) {
      requests.push(options);
      const reps = (options.request.variables?.representations ?? []) as { sku: string }[];
      const errors = reps.flatMap((r, i) =>
        r.sku === 'BAD' ? [{ message: `no product ${r.sku}`, path: ['_entities', i, 'name'], extensions: { code: 'NOT_FOUND' } }] : [],
      );
      return {
        data: { _entities: reps.map((r) => (r.sku === 'BAD' ? null : { name: `name of ${r.sku}` })) },
        ...(errors.length ? { errors: errors as never } : {}),
      };
    },
  };
  return { requests, source };
}

/** An incoming request's cache policy, recording what the data source restricts it with. */
function cachePolicy() {
  const hints: { maxAge: number; scope?: string }[] = [];
  return { hints, policy: { restrict: (hint: { maxAge: number; scope?: string }) => hints.push(hint) } };
}

function fetch(
  batcher: EntityBatcher,
  skus: string[],
  authorization?: string,
  query = QUERY,
  extra: { headers?: [string, string][]; policy?: ReturnType<typeof cachePolicy>['policy'] } = {},
) {
  return batcher.process({
    kind: 'incoming operation',
    request: {
      query,
      operationName: 'Q__product__1',
      variables: { representations: skus.map((sku) => ({ __typename: 'Product', sku })) },
      ...(extra.headers ? { http: { headers: new Map(extra.headers) } } : {}),
    },
    context: { authorization },
    incomingRequestContext: { overallCachePolicy: extra.policy } as never,
  } as Options);
}

/** A subgraph that refuses any request of more than one representation as a whole, in the way `refusal` says. */
function refusingSubgraph(refusal: 'request-error' | 413 | 503) {
  const requests: number[] = [];
  const source: GraphQLDataSource = {
    async process(options) {
      const reps = (options.request.variables?.representations ?? []) as { sku: string }[];
      requests.push(reps.length);
      if (reps.length > 1) {
        if (refusal === 'request-error') return { data: null, errors: [{ message: 'too costly', extensions: { code: 'COST_LIMIT' } }] as never };
        throw Object.assign(new Error(`${refusal}`), { extensions: { response: { status: refusal } } });
      }
      return { data: { _entities: reps.map((r) => ({ name: `name of ${r.sku}` })) } };
    },
  };
  return { requests, source };
}

describe('EntityBatcher', () => {
  it('sends concurrent fetches as one request and gives each caller its own slice', async () => {
    const subgraph = recordingSubgraph();
    const batcher = new EntityBatcher(subgraph.source);
    const [a, b, c] = await Promise.all([fetch(batcher, ['A1', 'A2']), fetch(batcher, ['B1']), fetch(batcher, ['C1', 'C2', 'C3'])]);
    assert.equal(subgraph.requests.length, 1);
    assert.deepEqual(
      (subgraph.requests[0].request.variables!.representations as { sku: string }[]).map((r) => r.sku),
      ['A1', 'A2', 'B1', 'C1', 'C2', 'C3'],
    );
    assert.deepEqual(a.data, { _entities: [{ name: 'name of A1' }, { name: 'name of A2' }] });
    assert.deepEqual(b.data, { _entities: [{ name: 'name of B1' }] });
    assert.deepEqual(c.data, { _entities: [{ name: 'name of C1' }, { name: 'name of C2' }, { name: 'name of C3' }] });
    assert.deepEqual(batcher.stats, { requests: 1, fetches: 3, resent: 0 });
  });

  it('hands an error to the caller whose entity failed, with its own index', async () => {
    const subgraph = recordingSubgraph();
    const batcher = new EntityBatcher(subgraph.source);
    const [ok, failed] = await Promise.all([fetch(batcher, ['A1']), fetch(batcher, ['B1', 'BAD'])]);
    assert.equal(ok.errors, undefined);
    assert.deepEqual(failed.data, { _entities: [{ name: 'name of B1' }, null] });
    assert.deepEqual(failed.errors, [{ message: 'no product BAD', path: ['_entities', 1, 'name'], extensions: { code: 'NOT_FOUND' } }]);
  });

  it('never mixes credentials or operations in one request, and lets other requests through untouched', async () => {
    const subgraph = recordingSubgraph();
    const batcher = new EntityBatcher(subgraph.source);
    await Promise.all([
      fetch(batcher, ['A1'], 'Bearer alice'),
      fetch(batcher, ['B1'], 'Bearer bob'),
      fetch(batcher, ['C1'], 'Bearer alice', QUERY.replace('name', 'name sku')),
    ]);
    assert.equal(subgraph.requests.length, 3);
    const plain = await batcher.process({
      kind: 'incoming operation',
      request: { query: '{ __typename }' },
      context: {},
      incomingRequestContext: {} as never,
    } as Options);
    assert.deepEqual(plain.data, { _entities: [] });
    assert.equal(subgraph.requests.length, 4);
  });

  it('fails every caller of a batch whose request failed', async () => {
    const batcher = new EntityBatcher({
      process: async () => {
        throw new Error('connection refused');
      },
    });
    const results = await Promise.allSettled([fetch(batcher, ['A1']), fetch(batcher, ['B1'])]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
  });

  it("restricts every caller's cache policy by the shared answer's Cache-Control", async () => {
    const batcher = new EntityBatcher({
      async process(options) {
        const reps = (options.request.variables?.representations ?? []) as { sku: string }[];
        // What SubgraphDataSource does for the request it sends: the first caller's policy.
        (
          (options as { incomingRequestContext?: unknown }).incomingRequestContext as { overallCachePolicy: { restrict(hint: object): void } }
        ).overallCachePolicy.restrict({ maxAge: 30, scope: 'PRIVATE' });
        return {
          data: { _entities: reps.map((r) => ({ name: r.sku })) },
          http: { headers: new Headers({ 'cache-control': 'max-age=30, private' }) } as never,
        };
      },
    });
    const [a, b] = [cachePolicy(), cachePolicy()];
    await Promise.all([fetch(batcher, ['A1'], undefined, QUERY, { policy: a.policy }), fetch(batcher, ['B1'], undefined, QUERY, { policy: b.policy })]);
    assert.deepEqual(batcher.stats, { requests: 1, fetches: 2, resent: 0 });
    assert.deepEqual(a.hints, [{ maxAge: 30, scope: 'PRIVATE' }]);
    assert.deepEqual(b.hints, [{ maxAge: 30, scope: 'PRIVATE' }]);
  });

  it('never merges fetches whose forwarded headers differ, nor a mutation', async () => {
    const subgraph = recordingSubgraph();
    const batcher = new EntityBatcher(subgraph.source);
    await Promise.all([
      fetch(batcher, ['A1'], undefined, QUERY, { headers: [['x-tenant', 'a']] }),
      fetch(batcher, ['B1'], undefined, QUERY, { headers: [['x-tenant', 'b']] }),
      fetch(batcher, ['C1'], undefined, QUERY.replace(/^query/, 'mutation')),
      fetch(batcher, ['D1'], undefined, QUERY.replace(/^query/, 'mutation')),
    ]);
    assert.deepEqual(
      subgraph.requests.map((r) => (r.request.variables!.representations as { sku: string }[]).map((rep) => rep.sku)),
      [['C1'], ['D1'], ['A1'], ['B1']],
    );
  });

  it(`sends at most ${MAX_BATCH_REPRESENTATIONS} representations in one request`, async () => {
    const subgraph = recordingSubgraph();
    const batcher = new EntityBatcher(subgraph.source);
    const half = Array.from({ length: MAX_BATCH_REPRESENTATIONS / 2 + 1 }, (_, i) => `S${i}`);
    const answers = await Promise.all([fetch(batcher, half), fetch(batcher, half), fetch(batcher, ['LAST'])]);
    assert.deepEqual(
      subgraph.requests.map((r) => (r.request.variables!.representations as unknown[]).length),
      [half.length, half.length + 1],
    );
    assert.deepEqual(
      answers.map((a) => (a.data as { _entities: unknown[] })._entities.length),
      [half.length, half.length, 1],
    );
  });

  for (const refusal of ['request-error', 413] as const) {
    it(`sends each fetch again alone when the merged request is refused as a whole (${refusal})`, async () => {
      const subgraph = refusingSubgraph(refusal);
      const batcher = new EntityBatcher(subgraph.source);
      const [a, b] = await Promise.all([fetch(batcher, ['A1']), fetch(batcher, ['B1'])]);
      assert.deepEqual(subgraph.requests, [2, 1, 1]);
      assert.deepEqual(a, { data: { _entities: [{ name: 'name of A1' }] } });
      assert.deepEqual(b, { data: { _entities: [{ name: 'name of B1' }] } });
      assert.deepEqual(batcher.stats, { requests: 3, fetches: 2, resent: 2 });
    });
  }

  it('does not send again what failed for another reason (503): an overloaded subgraph is not sent more', async () => {
    const subgraph = refusingSubgraph(503);
    const batcher = new EntityBatcher(subgraph.source);
    const results = await Promise.allSettled([fetch(batcher, ['A1']), fetch(batcher, ['B1'])]);
    assert.deepEqual(subgraph.requests, [2]);
    assert.deepEqual(
      results.map((r) => r.status === 'rejected' && (r.reason as Error).message),
      ['503', '503'],
    );
  });
});
