import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GraphQLError } from 'graphql';
import { decodeCursor, encodeCursor, pageSize, toConnection } from '../src/pagination.ts';

describe('pagination', () => {
  it('round-trips cursors, including unusual keys', () => {
    for (const key of ['SKU-0001', '2026-11-22T10:00:00.000Z|0d1c', 'ümlaut/é']) assert.equal(decodeCursor(encodeCursor(key)), key);
  });

  it('refuses cursors it did not make', () => {
    for (const cursor of ['', '!!!', 'aGVsbG8', Buffer.from('c1:').toString('base64url'), 'YzE6U0tVLTE=']) {
      assert.throws(
        () => decodeCursor(cursor),
        (e: GraphQLError) => e.extensions.code === 'BAD_USER_INPUT' && e.extensions.field === 'after',
      );
    }
  });

  it('bounds page sizes', () => {
    assert.equal(pageSize(undefined), 20);
    assert.equal(pageSize(100), 100);
    for (const bad of [0, -1, 101, 1.5])
      assert.throws(
        () => pageSize(bad),
        (e: GraphQLError) => e.extensions.code === 'BAD_USER_INPUT',
      );
  });

  it('builds a page from size + 1 rows', () => {
    const page = toConnection(['a', 'b', 'c'], 2, (x) => x, 7);
    assert.deepEqual(
      page.edges.map((e) => e.node),
      ['a', 'b'],
    );
    assert.equal(page.pageInfo.hasNextPage, true);
    assert.equal(decodeCursor(page.pageInfo.endCursor!), 'b');
    assert.equal(page.totalCount, 7);
    assert.equal(toConnection([], 2, (x: string) => x, 0).pageInfo.endCursor, null);
  });
});
