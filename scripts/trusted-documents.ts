/**
 * Trusted documents (docs/security.md, "Trusted documents"): every operation of
 * schema/operations/*.graphql, exactly as the SDK sends it (its generated document, printed), with
 * the SHA-256 of that text as its id. Writes two files:
 *
 * - `schema/trusted-documents.json`, in Apollo's persisted query manifest format (`format`,
 *   `version`, `operations: [{ id, name, type, body }]`), which the gateway loads: in production it
 *   runs only these, and anywhere it answers a request that names an id alone;
 * - `clients/sdk/src/generated/document-ids.ts`, the ids by operation name, so the SDK sends an id
 *   without hashing at run time (React Native has no `crypto.subtle`).
 *
 * `npm run trusted-documents` (part of `npm run generate`) writes them; `-- --check` exits 1 when
 * either is stale.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { type DocumentNode, Kind, type OperationDefinitionNode, print } from 'graphql';
import { REPO_ROOT, isMain } from '../platform/src/config.ts';
import { requestDocuments, subscriptionDocuments } from '../clients/sdk/src/operations.ts';
import { writeOrCheck } from './generated-file.ts';

/** The manifest the gateway loads. */
export const TRUSTED_DOCUMENTS_FILE = path.join(REPO_ROOT, 'schema', 'trusted-documents.json');
/** The SDK's ids by operation name. */
export const SDK_DOCUMENT_IDS_FILE = path.join(REPO_ROOT, 'clients', 'sdk', 'src', 'generated', 'document-ids.ts');

/** One operation of the manifest. */
export interface TrustedDocument {
  /** SHA-256 of `body`, lower-case hex: what a client sends as `extensions.persistedQuery.sha256Hash`. */
  readonly id: string;
  readonly name: string;
  readonly type: 'query' | 'mutation' | 'subscription';
  /** The document as the SDK sends it. */
  readonly body: string;
}

/** Apollo's persisted query manifest. */
export interface TrustedDocumentManifest {
  readonly format: 'apollo-persisted-query-manifest';
  readonly version: 1;
  readonly operations: readonly TrustedDocument[];
}

/** The SHA-256 of a document's text, as Apollo's persisted queries name it. */
export function documentId(body: string): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The manifest of `documents` (default: every document the SDK sends), sorted by name. */
export function trustedDocuments(
  documents: readonly DocumentNode[] = [...Object.values(requestDocuments), ...Object.values(subscriptionDocuments)],
): TrustedDocumentManifest {
  const operations = documents.map((document): TrustedDocument => {
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
    const body = print(document);
    return { id: documentId(body), name: operation.name!.value, type: operation.operation, body };
  });
  operations.sort((a, b) => a.name.localeCompare(b.name));
  return { format: 'apollo-persisted-query-manifest', version: 1, operations };
}

/** The manifest file's text. */
export function renderManifest(manifest: TrustedDocumentManifest = trustedDocuments()): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** The SDK's module of ids by operation name. */
export function renderDocumentIds(manifest: TrustedDocumentManifest = trustedDocuments()): string {
  const lines = manifest.operations.map((operation) => `  ${operation.name}: '${operation.id}',`);
  return `// Written by scripts/trusted-documents.ts from schema/trusted-documents.json: do not edit.

/** The trusted-document id (SHA-256 of the printed document) of each of the SDK's operations, by name. */
export const DOCUMENT_IDS: Readonly<Record<string, string>> = {
${lines.join('\n')}
};
`;
}

if (isMain(import.meta.url)) {
  await writeOrCheck(TRUSTED_DOCUMENTS_FILE, () => renderManifest(), 'npm run trusted-documents');
  await writeOrCheck(SDK_DOCUMENT_IDS_FILE, () => renderDocumentIds(), 'npm run trusted-documents');
}
