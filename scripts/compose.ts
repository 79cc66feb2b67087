/**
 * Composes schema/<service>.graphql into schema/supergraph.graphql with @apollo/composition.
 * `npm run compose` writes it; `npm run compose -- --check` exits 1 when the checked-in file is stale.
 * `--schema-dir DIR` composes the subgraph SDLs of another folder (to check a proposed change).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { DEFAULT_SERVICE_PORTS, REPO_ROOT, SERVICE_NAMES, isMain } from '../platform/src/config.ts';
import { writeOrCheck } from './generated-file.ts';

/** Where the composed supergraph is checked in. */
export const SUPERGRAPH_FILE = path.join(REPO_ROOT, 'schema', 'supergraph.graphql');

/** Composes the five subgraph SDLs (from `schemaDir`) with their default routing URLs; throws with every composition error. */
export function composeSupergraph(schemaDir = path.join(REPO_ROOT, 'schema')): string {
  const services = SERVICE_NAMES.map((name) => ({
    name,
    url: `http://127.0.0.1:${DEFAULT_SERVICE_PORTS[name]}/graphql`,
    typeDefs: parse(readFileSync(path.join(schemaDir, `${name}.graphql`), 'utf8')),
  }));
  const result = composeServices(services);
  if (result.errors?.length || !result.supergraphSdl) {
    throw new Error(`composition failed:\n${(result.errors ?? []).map((e) => `- ${e.message}`).join('\n')}`);
  }
  return `${result.supergraphSdl.trim()}\n`;
}

if (isMain(import.meta.url)) {
  const dirFlag = process.argv.indexOf('--schema-dir');
  await writeOrCheck(
    SUPERGRAPH_FILE,
    () => (dirFlag > 0 ? composeSupergraph(path.resolve(process.argv[dirFlag + 1] ?? '')) : composeSupergraph()),
    'npm run compose',
  );
}
