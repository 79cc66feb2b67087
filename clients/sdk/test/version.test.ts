/**
 * The SDK's version follows the API (scripts/sdk.ts): the schema it was last versioned against is
 * kept beside it and must be the API schema of now, and a change moves the version by its kind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { API_SCHEMA_FILE } from '../../../scripts/api-schema.ts';
import { SDK_API_SNAPSHOT, apiChange, nextVersion, publishedManifest } from '../../../scripts/sdk.ts';

const V1 = 'type Query { product(sku: ID!): Product }\ntype Product { sku: ID!, name: String! }\n';

describe('the SDK version', () => {
  it('was set against the API schema of now (npm run sdk:version after an API change)', () => {
    assert.equal(
      readFileSync(SDK_API_SNAPSHOT, 'utf8'),
      readFileSync(API_SCHEMA_FILE, 'utf8'),
      'schema/api.graphqls changed since the SDK version was set: run npm run sdk:version',
    );
  });

  it('tells breaking from compatible API changes', () => {
    assert.equal(apiChange(V1, V1), 'none');
    assert.equal(apiChange(V1, V1.replace('name: String!', 'name: String!, price: Int')), 'compatible');
    assert.equal(apiChange(V1, V1.replace('type Product', '"A product."\ntype Product')), 'compatible');
    assert.equal(apiChange(V1, V1.replace(', name: String!', '')), 'breaking');
    assert.equal(apiChange(V1, V1.replace('sku: ID!)', 'sku: ID!, shop: ID!)')), 'breaking');
  });

  it('moves the version by the kind of change: at 0.x breaking bumps the minor, from 1.0 the major', () => {
    assert.equal(nextVersion('0.1.0', 'none'), '0.1.0');
    assert.equal(nextVersion('0.1.3', 'compatible'), '0.1.4');
    assert.equal(nextVersion('0.1.3', 'breaking'), '0.2.0');
    assert.equal(nextVersion('1.4.2', 'compatible'), '1.5.0');
    assert.equal(nextVersion('1.4.2', 'breaking'), '2.0.0');
    assert.throws(() => nextVersion('1.4', 'breaking'), /not MAJOR\.MINOR\.PATCH/);
  });

  it('publishes JavaScript and types for every entry point of the workspace', () => {
    const manifest = publishedManifest({
      name: '@swiftcart/sdk',
      version: '0.3.1',
      description: 'd',
      exports: { '.': './src/index.ts', './errors': './src/errors.ts' },
      dependencies: { graphql: '16.15.0' },
    });
    assert.deepEqual(manifest.exports, {
      '.': { types: './index.d.ts', default: './index.js' },
      './errors': { types: './errors.d.ts', default: './errors.js' },
    });
    assert.equal(manifest.sideEffects, false);
    assert.equal(manifest.version, '0.3.1');
    assert.equal('private' in manifest, false);
  });
});
