/**
 * The publishable `@swiftcart/sdk` (docs/clients.md, "Publishing the SDK"). Inside the repository
 * the workspace exports its TypeScript sources; what goes to a registry is built from them:
 *
 * - `npm run sdk:build`: `clients/sdk/dist/`, a package of its own: ESM JavaScript and `.d.ts`
 *   (tsc, `clients/sdk/tsconfig.build.json`), a `package.json` with an `exports` map and
 *   `"sideEffects": false`, and the README. No TypeScript runs at run time.
 * - `npm run sdk:pack`: builds, then `npm pack` into `.data/sdk/`; prints the tarball's path.
 * - `npm run sdk:version`: sets the SDK's version from how the API schema (schema/api.graphqls)
 *   changed since the version was last set (`clients/sdk/api.graphqls` keeps that schema): a
 *   breaking change bumps the major (the minor while at 0.x), anything else the minor (the patch
 *   at 0.x). `npm test` fails while the two schemas differ.
 *
 * A bad command exits 2 with a message.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, findBreakingChanges } from 'graphql';
import { REPO_ROOT, isMain } from '../platform/src/config.ts';
import { API_SCHEMA_FILE } from './api-schema.ts';

/** The workspace. */
export const SDK_DIR = path.join(REPO_ROOT, 'clients', 'sdk');
/** The built package. */
export const SDK_DIST = path.join(SDK_DIR, 'dist');
/** The API schema as it was when the SDK's version was last set. */
export const SDK_API_SNAPSHOT = path.join(SDK_DIR, 'api.graphqls');
/** Where `sdk:pack` leaves tarballs. */
export const SDK_PACK_DIR = path.join(REPO_ROOT, '.data', 'sdk');

interface WorkspaceManifest {
  name: string;
  version: string;
  description: string;
  exports: Record<string, string>;
  dependencies: Record<string, string>;
}

const readManifest = (): WorkspaceManifest => JSON.parse(readFileSync(path.join(SDK_DIR, 'package.json'), 'utf8'));

/** The built package's manifest: the workspace's, with `exports` pointing at JavaScript and types. */
export function publishedManifest(workspace: WorkspaceManifest = readManifest()): Record<string, unknown> {
  const exports: Record<string, { types: string; default: string }> = {};
  for (const [entry, source] of Object.entries(workspace.exports)) {
    const base = source.replace(/^\.\/src\//, './').replace(/\.ts$/, '');
    exports[entry] = { types: `${base}.d.ts`, default: `${base}.js` };
  }
  return {
    name: workspace.name,
    version: workspace.version,
    description: workspace.description,
    type: 'module',
    main: exports['.'].default,
    types: exports['.'].types,
    exports,
    sideEffects: false,
    engines: { node: '>=22' },
    dependencies: workspace.dependencies,
  };
}

/** Builds clients/sdk/dist from the sources. */
export function buildSdk(): string {
  rmSync(SDK_DIST, { recursive: true, force: true });
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(SDK_DIR, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  writeFileSync(path.join(SDK_DIST, 'package.json'), `${JSON.stringify(publishedManifest(), null, 2)}\n`);
  copyFileSync(path.join(SDK_DIR, 'README.md'), path.join(SDK_DIST, 'README.md'));
  return SDK_DIST;
}

/** Builds, packs into `destination` and returns the tarball's path. */
export function packSdk(destination: string = SDK_PACK_DIR): string {
  buildSdk();
  mkdirSync(destination, { recursive: true });
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', destination], { cwd: SDK_DIST, encoding: 'utf8' });
  const [{ filename }] = JSON.parse(out) as { filename: string }[];
  return path.join(destination, filename);
}

/** How a version moves: breaking changes, other changes, or none. */
export type ApiChange = 'breaking' | 'compatible' | 'none';

/**
 * Compares two API schemas (SDL) with graphql-js's own check. Anything that is not breaking
 * (a new field, a new enum value, a description) is compatible: a client built on the old schema
 * keeps working.
 */
export function apiChange(before: string, after: string): ApiChange {
  if (before === after) return 'none';
  return findBreakingChanges(buildSchema(before), buildSchema(after)).length > 0 ? 'breaking' : 'compatible';
}

/** The version after `change` (semver; at 0.x a breaking change bumps the minor, others the patch). */
export function nextVersion(version: string, change: ApiChange): string {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (!match) throw new Error(`the SDK's version "${version}" is not MAJOR.MINOR.PATCH`);
  const [major, minor, patch] = match.slice(1).map(Number);
  if (change === 'none') return version;
  if (major === 0) return change === 'breaking' ? `0.${minor + 1}.0` : `0.${minor}.${patch + 1}`;
  return change === 'breaking' ? `${major + 1}.0.0` : `${major}.${minor + 1}.0`;
}

/** Sets the SDK's version from the API's change since the snapshot, and takes a new snapshot. */
function setVersion(): void {
  const current = readFileSync(API_SCHEMA_FILE, 'utf8');
  const change = apiChange(readFileSync(SDK_API_SNAPSHOT, 'utf8'), current);
  const manifestFile = path.join(SDK_DIR, 'package.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as WorkspaceManifest;
  const version = nextVersion(manifest.version, change);
  if (change === 'none') {
    console.log(`[sdk] the API schema is unchanged: the SDK stays at ${version}`);
    return;
  }
  writeFileSync(manifestFile, `${JSON.stringify({ ...manifest, version }, null, 2)}\n`);
  copyFileSync(API_SCHEMA_FILE, SDK_API_SNAPSHOT);
  // The workspace's version is in the lockfile too; npm ci refuses a lockfile out of step.
  execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: REPO_ROOT, stdio: 'inherit' });
  console.log(`[sdk] ${change} API change: the SDK goes from ${manifest.version} to ${version}`);
}

if (isMain(import.meta.url)) {
  const command = process.argv[2];
  if (command === 'build') console.log(`[sdk] built ${path.relative(REPO_ROOT, buildSdk())}`);
  else if (command === 'pack') console.log(packSdk());
  else if (command === 'version') setVersion();
  else {
    console.error(`usage: node scripts/sdk.ts build|pack|version (got ${command ?? 'nothing'})`);
    process.exit(2);
  }
}
