/**
 * The entity batcher: concurrent entity fetches with the same operation and credentials become one
 * request, and each caller gets back exactly its own entities and errors.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GraphQLDataSource } from '@apollo/gateway';
import { EntityBatcher } from '../src/entity-batcher.ts';

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

function fetch(batcher: EntityBatcher, skus: string[], authorization?: string, query = QUERY) {
  return batcher.process({
    kind: 'incoming operation',
    request: { query, operationName: 'Q__product__1', variables: { representations: skus.map((sku) => ({ __typename: 'Product', sku })) } },
    context: { authorization },
    incomingRequestContext: {} as never,
  } as Options);
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
    assert.deepEqual(batcher.stats, { requests: 1, fetches: 3 });
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
});
