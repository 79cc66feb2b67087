/**
 * Trusted documents (docs/security.md, "Trusted documents"): the operations of
 * `schema/trusted-documents.json` (scripts/trusted-documents.ts), which are every operation the
 * storefront, the SDK and the mobile apps send.
 *
 * - A request may name a manifest operation by its id alone, as automatic persisted queries do
 *   (`extensions.persistedQuery.sha256Hash`, no `query`): the gateway fills in the document. Clients
 *   send a few dozen bytes instead of the document.
 * - With `TRUSTED_DOCUMENTS=enforce` (the default in production) nothing else runs: any other
 *   document, over HTTP or graphql-ws, is refused with `PERSISTED_QUERY_NOT_IN_LIST` before it is
 *   parsed, except for the token subjects of `TRUSTED_DOCUMENTS_OPERATORS` holding the admin role.
 *   With `off` (the default elsewhere) any document runs, and an unknown id is Apollo's
 *   `PERSISTED_QUERY_NOT_FOUND`, on which the SDK sends the whole document.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { HeaderMap, type HTTPGraphQLResponse } from '@apollo/server';
import type { Viewer } from '@swiftcart/platform/auth';
import { REPO_ROOT } from '@swiftcart/platform/config';
import { commaList, oneOf, setting, z } from '@swiftcart/platform/settings';

/** The code of a refused document. */
export const NOT_IN_LIST = 'PERSISTED_QUERY_NOT_IN_LIST';

/** The manifest the gateway loads. */
export const TRUSTED_DOCUMENTS_PATH = path.join(REPO_ROOT, 'schema', 'trusted-documents.json');

/** The variables of this module. */
export const trustedDocumentSettings = z.object({
  TRUSTED_DOCUMENTS: oneOf(['enforce', 'off'], { default: undefined }).describe(
    '`enforce`: only the operations of `schema/trusted-documents.json` run, anything else is refused with `PERSISTED_QUERY_NOT_IN_LIST` (default in production); `off`: any operation runs (default elsewhere). Either way a request may name a listed operation by its id alone',
  ),
  TRUSTED_DOCUMENTS_OPERATORS: setting((raw) => commaList(raw), { default: 'none', accepts: 'token subjects, comma-separated' }).describe(
    'token subjects that may run any operation while `TRUSTED_DOCUMENTS=enforce`, when their token also has the admin role (operators, a Sandbox with an admin token)',
  ),
});

/** A document a client sent: its text, or the id it named instead. */
export interface SentDocument {
  readonly query: string | undefined;
  readonly id: string | undefined;
}

/** The loaded manifest and the rules of this gateway. */
export class TrustedDocuments {
  readonly #bodies: ReadonlyMap<string, string>;
  readonly enforced: boolean;
  readonly #operators: ReadonlySet<string>;

  constructor(manifest: { operations: readonly { id: string; body: string }[] }, options: { enforced: boolean; operators: readonly string[] }) {
    this.#bodies = new Map(manifest.operations.map((operation) => [operation.id, operation.body]));
    this.enforced = options.enforced;
    this.#operators = new Set(options.operators);
  }

  /** Loads `file` (default: the repository's manifest); `TRUSTED_DOCUMENTS` unset means enforce in production only. */
  static load(settings: z.output<typeof trustedDocumentSettings>, production: boolean, file = TRUSTED_DOCUMENTS_PATH): TrustedDocuments {
    const manifest = JSON.parse(readFileSync(file, 'utf8')) as { operations: { id: string; body: string }[] };
    const enforced = (settings.TRUSTED_DOCUMENTS ?? (production ? 'enforce' : 'off')) === 'enforce';
    return new TrustedDocuments(manifest, { enforced, operators: settings.TRUSTED_DOCUMENTS_OPERATORS });
  }

  /** How many operations the manifest lists. */
  get size(): number {
    return this.#bodies.size;
  }

  /** The document of a listed id. */
  bodyOf(id: string): string | undefined {
    return this.#bodies.get(id);
  }

  /** Whether `query` is, to the byte, a listed document. */
  lists(query: string): boolean {
    return this.#bodies.has(createHash('sha256').update(query).digest('hex'));
  }

  /** Whether `viewer` may run documents that are not listed. */
  mayRunAny(viewer: Viewer): boolean {
    return !this.enforced || (viewer.customerId !== null && viewer.roles.includes('admin') && this.#operators.has(viewer.customerId));
  }

  /**
   * Null when a document may run, else why not. `viewer` is asked for only when the document is
   * not listed and the list is enforced.
   */
  async admit(sent: SentDocument, viewer: () => Promise<Viewer>): Promise<string | null> {
    if (!this.enforced) return null;
    if (sent.query === undefined) {
      // An id alone: a listed one is filled in by Apollo from PersistedDocumentStore.
      return sent.id === undefined || this.#bodies.has(sent.id) ? null : `No trusted document has the id ${sent.id}`;
    }
    if (this.lists(sent.query) || this.mayRunAny(await viewer())) return null;
    return 'This gateway runs only the trusted documents of schema/trusted-documents.json: send one of them (or its id)';
  }
}

/** Ids registered by clients (automatic persisted queries) that are remembered, when not enforced. */
export const REGISTERED_LIMIT = 1_000;

/**
 * Apollo's persisted-query store (`persistedQueries.cache`; Apollo prefixes its keys with `apq:`):
 * a listed id answers with its document, so a request may name it alone. Documents that clients
 * register (the whole document with its id, after `PERSISTED_QUERY_NOT_FOUND`) are kept only when
 * not enforced, at most {@link REGISTERED_LIMIT}, the oldest dropped first.
 */
export class PersistedDocumentStore {
  readonly #trusted: TrustedDocuments;
  readonly #registered = new Map<string, string>();

  constructor(trusted: TrustedDocuments) {
    this.#trusted = trusted;
  }

  async get(key: string): Promise<string | undefined> {
    return this.#trusted.bodyOf(key.replace(/^apq:/, '')) ?? this.#registered.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    if (this.#trusted.enforced) return;
    this.#registered.delete(key);
    this.#registered.set(key, value);
    if (this.#registered.size > REGISTERED_LIMIT) this.#registered.delete(this.#registered.keys().next().value!);
  }

  async delete(key: string): Promise<boolean> {
    return this.#registered.delete(key);
  }
}

/** The document (or id) of an HTTP GraphQL request, POST or GET. */
export function sentDocument(method: string, search: string, body: unknown): SentDocument {
  let query: unknown;
  let extensions: unknown;
  if (method === 'GET') {
    const params = new URLSearchParams(search);
    query = params.get('query') ?? undefined;
    try {
      extensions = JSON.parse(params.get('extensions') ?? 'null');
    } catch {
      extensions = undefined; // Apollo answers a malformed parameter itself
    }
  } else if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    ({ query, extensions } = body as { query?: unknown; extensions?: unknown });
  }
  const id = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)?.persistedQuery?.sha256Hash;
  return { query: typeof query === 'string' ? query : undefined, id: typeof id === 'string' ? id : undefined };
}

/** The HTTP answer to a refused document: 400 with the error. */
export function notInListResponse(message: string): HTTPGraphQLResponse {
  return {
    status: 400,
    headers: new HeaderMap([['content-type', 'application/json; charset=utf-8']]),
    body: { kind: 'complete', string: JSON.stringify({ errors: [{ message, extensions: { code: NOT_IN_LIST } }] }) },
  };
}
