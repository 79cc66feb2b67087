/**
 * Writes schema/api.graphqls: the API schema of schema/supergraph.graphql, i.e. the schema clients
 * see (what the gateway serves and introspection shows), without the federation machinery
 * (`join__*`, `link__*`, `@join__*`). Native client generators (Apollo Kotlin, Apollo iOS) read it
 * together with schema/operations/*.graphql (docs/clients.md).
 * `node scripts/api-schema.ts` writes it; `--check` exits 1 when the checked-in file is stale.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Supergraph } from '@apollo/federation-internals';
import { printSchema } from 'graphql';
import { REPO_ROOT, isMain } from '../platform/src/config.ts';
import { writeOrCheck } from './generated-file.ts';
import { SUPERGRAPH_FILE } from './compose.ts';

/** Where the API schema is checked in. */
export const API_SCHEMA_FILE = path.join(REPO_ROOT, 'schema', 'api.graphqls');

/** The first line of the file, so nobody edits it by hand. */
const HEADER = '# The API schema of schema/supergraph.graphql, written by scripts/api-schema.ts: do not edit.\n\n';

/** The API schema of a supergraph SDL, printed with descriptions; the way the gateway derives it. */
export function apiSchemaOf(supergraphSdl: string = readFileSync(SUPERGRAPH_FILE, 'utf8')): string {
  const api = Supergraph.build(supergraphSdl).apiSchema().toGraphQLJSSchema();
  return `${HEADER}${printSchema(api).trim()}\n`;
}

if (isMain(import.meta.url)) await writeOrCheck(API_SCHEMA_FILE, apiSchemaOf, 'node scripts/api-schema.ts');
