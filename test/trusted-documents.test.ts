/**
 * The trusted-document manifest (scripts/trusted-documents.ts) is up to date with the SDK's
 * documents, and a changed operation is a different document: a new id, and a stale manifest.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, print } from 'graphql';
import { requestDocuments, subscriptionDocuments } from '../clients/sdk/src/operations.ts';
import {
  SDK_DOCUMENT_IDS_FILE,
  TRUSTED_DOCUMENTS_FILE,
  documentId,
  renderDocumentIds,
  renderManifest,
  trustedDocuments,
} from '../scripts/trusted-documents.ts';

describe('trusted documents', () => {
  it('the manifest and the SDK ids are up to date (npm run trusted-documents)', () => {
    assert.equal(readFileSync(TRUSTED_DOCUMENTS_FILE, 'utf8'), renderManifest(), 'schema/trusted-documents.json is stale: run npm run trusted-documents');
    assert.equal(readFileSync(SDK_DOCUMENT_IDS_FILE, 'utf8'), renderDocumentIds(), 'document-ids.ts is stale: run npm run trusted-documents');
  });

  it('lists every operation the SDK sends once, with the SHA-256 of its text as id', () => {
    const { format, version, operations } = trustedDocuments();
    assert.deepEqual({ format, version }, { format: 'apollo-persisted-query-manifest', version: 1 });
    assert.equal(operations.length, Object.keys(requestDocuments).length + Object.keys(subscriptionDocuments).length);
    assert.equal(new Set(operations.map((o) => o.id)).size, operations.length);
    for (const operation of operations) assert.equal(operation.id, documentId(operation.body), operation.name);
    const product = operations.find((o) => o.name === 'Product')!;
    assert.equal(product.body, print(requestDocuments.product));
    assert.equal(product.type, 'query');
  });

  it('a changed operation gets another id, and the checked-in manifest no longer matches', () => {
    const changed = parse(print(requestDocuments.product).replace('query Product($sku: ID!) {', 'query Product($sku: ID!) {\n  __typename'));
    const documents = [...Object.values(requestDocuments).filter((d) => d !== requestDocuments.product), changed, ...Object.values(subscriptionDocuments)];
    const manifest = trustedDocuments(documents);
    const before = trustedDocuments().operations.find((o) => o.name === 'Product')!;
    const after = manifest.operations.find((o) => o.name === 'Product')!;
    assert.notEqual(after.id, before.id);
    assert.notEqual(renderManifest(manifest), readFileSync(TRUSTED_DOCUMENTS_FILE, 'utf8'));
    // The others keep their ids.
    assert.deepEqual(
      manifest.operations.filter((o) => o.name !== 'Product').map((o) => o.id),
      trustedDocuments()
        .operations.filter((o) => o.name !== 'Product')
        .map((o) => o.id),
    );
  });
});
