/**
 * The catalogue replica's table is created by shipped migrations of two services (order 0001,
 * cart 0001) from one constant: the constant is frozen, and this fails when it is edited. A change
 * to the table is a new migration of each service, never an edit of the constant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CATALOGUE_TABLE_SQL } from '@swiftcart/platform/catalogue';

test('CATALOGUE_TABLE_SQL is the text the shipped migrations ran', () => {
  assert.equal(createHash('sha256').update(CATALOGUE_TABLE_SQL).digest('hex'), 'b9cdfad6f19ed39e7e0c90b9c454aa831361b2e2cba30b34639f882717089728');
});
