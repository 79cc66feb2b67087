/**
 * The SDK runs unchanged in browsers, Node and React Native: nothing on its runtime import graph
 * (its own sources, the generated documents, and the packages they load, resolved the way Node
 * and bundlers do) is a Node built-in (`node:*`, `fs`, `events`, ...) or `ws`, and its own sources
 * use no Node-only globals. Type-only imports are erased at runtime and not followed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';

const SDK_SRC = path.resolve(import.meta.dirname, '../src');
const ENTRY = path.join(SDK_SRC, 'index.ts');

/** Condition sets a resolver may use: a bundler for browsers or React Native, and Node itself. */
const CONDITION_SETS = {
  browser: ['react-native', 'browser', 'import', 'module', 'default'],
  node: ['node', 'import', 'default'],
} as const;

/** Packages that are Node-only although not built in. */
const NODE_ONLY_PACKAGES = new Set(['ws']);

/** Globals that exist in Node but not in browsers or React Native. */
const NODE_ONLY_GLOBALS = new Set(['process', 'Buffer', 'require', '__dirname', '__filename', 'global', 'setImmediate']);

/** A runtime import found in a file. */
interface Edge {
  readonly from: string;
  readonly specifier: string;
}

/** The specifiers a file loads at runtime: imports and re-exports that are not type-only, `import()`, `require()`. */
function runtimeSpecifiers(file: string): string[] {
  const kind = /\.[cm]?js$/.test(file) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false, kind);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.importClause?.isTypeOnly) found.push(node.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!node.isTypeOnly) found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1 && ts.isStringLiteralLike(node.arguments[0])) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Node-only globals a TypeScript source refers to (identifiers that are not property names or declarations). */
function nodeGlobals(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isIdentifier(node) && NODE_ONLY_GLOBALS.has(node.text)) {
      const parent = node.parent;
      const isMemberName =
        (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
        (ts.isPropertyAssignment(parent) && parent.name === node) ||
        (ts.isPropertySignature(parent) && parent.name === node) ||
        (ts.isPropertyDeclaration(parent) && parent.name === node);
      if (!isMemberName) found.push(`${path.relative(SDK_SRC, file)}: ${node.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function fileOrIndex(candidate: string): string | undefined {
  for (const option of [
    candidate,
    `${candidate}.js`,
    `${candidate}.mjs`,
    `${candidate}.cjs`,
    `${candidate}.ts`,
    path.join(candidate, 'index.js'),
    path.join(candidate, 'index.mjs'),
  ]) {
    if (existsSync(option) && statSync(option).isFile()) return option;
  }
  return undefined;
}

/** Picks the target of an `exports` entry for the given conditions. */
function pickExport(target: unknown, conditions: readonly string[]): string | undefined {
  if (typeof target === 'string') return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const picked = pickExport(t, conditions);
      if (picked) return picked;
    }
    return undefined;
  }
  if (target && typeof target === 'object') {
    for (const [key, value] of Object.entries(target)) {
      if (conditions.includes(key)) {
        const picked = pickExport(value, conditions);
        if (picked) return picked;
      }
    }
  }
  return undefined;
}

/** Resolves a bare specifier from `from` like Node (or a bundler) with `conditions`; undefined when it cannot. */
function resolvePackage(specifier: string, from: string, conditions: readonly string[], bundler: boolean): string | undefined {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const subpath = specifier.slice(name.length);
  for (let dir = path.dirname(from); ; dir = path.dirname(dir)) {
    const root = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(root, 'package.json'))) {
      const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
      if (pkg.exports !== undefined) {
        const exportsMap = typeof pkg.exports === 'string' || Object.keys(pkg.exports).every((k) => !k.startsWith('.')) ? { '.': pkg.exports } : pkg.exports;
        const target = pickExport(exportsMap[`.${subpath}`], conditions);
        return target ? fileOrIndex(path.join(root, target)) : undefined;
      }
      if (subpath) return fileOrIndex(path.join(root, subpath));
      const main = (bundler && typeof pkg.module === 'string' ? pkg.module : undefined) ?? pkg.main ?? 'index.js';
      return fileOrIndex(path.join(root, main || 'index.js'));
    }
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Everything Node-only on the runtime import graph of `entry`, for each condition set, and every file visited. */
function walkRuntimeGraph(entry: string): { problems: string[]; visited: Record<keyof typeof CONDITION_SETS, string[]> } {
  const problems = new Set<string>();
  const visited = { browser: [] as string[], node: [] as string[] };
  for (const [setName, conditions] of Object.entries(CONDITION_SETS)) {
    const seen = new Set<string>();
    const queue: string[] = [entry];
    while (queue.length) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      for (const specifier of runtimeSpecifiers(file)) {
        const edge: Edge = { from: path.relative(process.cwd(), file), specifier };
        const bare = specifier.split('/')[0];
        if (specifier.startsWith('node:') || isBuiltin(specifier)) {
          problems.add(`${edge.from} imports the Node built-in '${specifier}'`);
          continue;
        }
        if (NODE_ONLY_PACKAGES.has(bare)) {
          problems.add(`${edge.from} imports the Node-only package '${specifier}'`);
          continue;
        }
        const target =
          specifier.startsWith('.') || specifier.startsWith('/')
            ? fileOrIndex(path.resolve(path.dirname(file), specifier))
            : resolvePackage(specifier, file, conditions, setName === 'browser');
        if (!target) {
          problems.add(`${edge.from}: '${specifier}' does not resolve (${setName})`);
          continue;
        }
        queue.push(target);
      }
    }
    visited[setName as keyof typeof CONDITION_SETS] = [...seen];
  }
  return { problems: [...problems].sort(), visited };
}

/** Everything Node-only on the runtime import graph of `entry`. */
function nodeOnlyImports(entry: string): string[] {
  return walkRuntimeGraph(entry).problems;
}

/** The SDK's own source files reachable from `entry` (not its packages). */
function ownFiles(entry: string): string[] {
  const files = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of runtimeSpecifiers(file)) {
      if (specifier.startsWith('.')) {
        const target = fileOrIndex(path.resolve(path.dirname(file), specifier));
        if (target) queue.push(target);
      }
    }
  }
  return [...files];
}

describe('the SDK is portable', () => {
  it('its runtime import graph (sources, generated documents, packages) has no Node built-in and no ws', () => {
    const files = ownFiles(ENTRY);
    assert.ok(
      files.some((f) => f.endsWith(path.join('generated', 'operations.ts'))),
      'the generated documents are on the graph',
    );
    assert.ok(files.length >= 8, `expected the SDK's sources on the graph, got ${files.join(', ')}`);
    const { problems, visited } = walkRuntimeGraph(ENTRY);
    assert.deepEqual(problems, []);
    // The walk reached into the packages, as each platform resolves them.
    const inPackage = (files: string[], file: string) => files.some((f) => f.endsWith(path.join('node_modules', file)));
    assert.ok(inPackage(visited.browser, 'graphql-ws/dist/client.js'), 'browser: graphql-ws resolves to its client build');
    assert.ok(inPackage(visited.browser, 'graphql/index.mjs'), 'browser: graphql resolves to its ES module build');
    assert.ok(inPackage(visited.node, 'graphql-ws/dist/index.js'), 'node: graphql-ws resolves to its ES module entry');
    assert.ok(inPackage(visited.node, 'graphql/index.js'), 'node: graphql resolves to its main');
    assert.ok(visited.node.length > 100 && visited.browser.length > 100, `visited ${visited.node.length} / ${visited.browser.length} files`);
  });

  it('its sources use no Node-only globals (process, Buffer, require, ...)', () => {
    assert.deepEqual(ownFiles(ENTRY).flatMap(nodeGlobals), []);
  });

  it('the check finds node: imports, bare built-ins and ws, also behind relative imports', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-sdk-portability-'));
    try {
      writeFileSync(path.join(dir, 'index.ts'), `import { a } from './a.ts';\nimport type { Readable } from 'node:stream';\nexport { a };\n`);
      writeFileSync(
        path.join(dir, 'a.ts'),
        `import { randomUUID } from 'node:crypto';\nimport { EventEmitter } from 'events';\nexport const a = () => [randomUUID(), new EventEmitter(), import('ws')];\n`,
      );
      const problems = nodeOnlyImports(path.join(dir, 'index.ts'));
      assert.equal(problems.length, 3, problems.join('\n'));
      assert.match(problems.join('\n'), /'node:crypto'/);
      assert.match(problems.join('\n'), /'events'/);
      assert.match(problems.join('\n'), /Node-only package 'ws'/);
      assert.doesNotMatch(problems.join('\n'), /node:stream/, 'a type-only import is erased at runtime');
      assert.deepEqual(nodeGlobals(path.join(dir, 'a.ts')), []);
      writeFileSync(path.join(dir, 'b.ts'), `export const b = () => process.env.X ?? Buffer.from('x');\n`);
      assert.equal(nodeGlobals(path.join(dir, 'b.ts')).length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
