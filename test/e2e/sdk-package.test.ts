/**
 * The publishable SDK (issue 18; scripts/sdk.ts, docs/clients.md "Publishing the SDK"), as someone
 * outside the repository gets it: `npm run sdk:pack`'s tarball, installed into scratch projects.
 * - The tarball holds JavaScript, `.d.ts`, its manifest and README, and nothing in TypeScript.
 * - A plain Node project (no TypeScript anywhere) installs it and runs a query and a subscription
 *   against a real gateway.
 * - A scratch Vite app builds with it for browsers and React Native's resolution conditions, and
 *   nothing on the bundle's import graph is a Node built-in (a plugin records every built-in asked
 *   for, and is shown to catch one).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Plugin, build } from 'vite';
import { packSdk } from '../../scripts/sdk.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { type TestStack, startStack } from '../support/stack.ts';

const SKU = 'PKG-1';
const run = promisify(execFile);

/** A Vite plugin that records every Node built-in the bundle asks for. */
function builtinRecorder(found: string[]): Plugin {
  return {
    name: 'record-node-builtins',
    enforce: 'pre',
    resolveId(source) {
      if (isBuiltin(source)) found.push(source);
      return null;
    },
  };
}

/** Builds the scratch app whose entry is `main` with Vite, as for a browser or React Native; returns the built-ins asked for. */
async function viteBuild(root: string, main: string): Promise<{ builtins: string[]; js: string }> {
  writeFileSync(path.join(root, 'index.html'), '<!doctype html><script type="module" src="/main.js"></script>\n');
  writeFileSync(path.join(root, 'main.js'), main);
  const builtins: string[] = [];
  await build({
    root,
    configFile: false,
    logLevel: 'silent',
    plugins: [builtinRecorder(builtins)],
    resolve: { conditions: ['react-native', 'browser', 'import', 'module', 'default'] },
    build: { outDir: path.join(root, 'dist'), emptyOutDir: true },
  });
  const assets = path.join(root, 'dist', 'assets');
  const js = readdirSync(assets)
    .filter((file) => file.endsWith('.js'))
    .map((file) => readFileSync(path.join(assets, file), 'utf8'))
    .join('\n');
  return { builtins, js };
}

describe('the SDK as a package', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'swiftcart-sdk-'));
  let tarball: string;
  let stack: TestStack;

  before(async () => {
    tarball = packSdk(path.join(scratch, 'packed'));
    stack = await startStack({ services: ['product', 'inventory'], gateway: true });
    await seedProducts(stack.services.product!.runtime.db.fork(), [
      { sku: SKU, name: 'Packaged', description: 'a product for the package test', priceAmount: 250, currency: 'EUR' },
    ]);
    await seedStock(stack.services.inventory!.runtime.db.fork(), [{ sku: SKU, onHand: 12 }]);
    // A project outside the repository: its own package.json, the tarball and its dependencies.
    const project = path.join(scratch, 'app');
    mkdirSync(project, { recursive: true });
    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'scratch-app', private: true, type: 'module', dependencies: { '@swiftcart/sdk': `file:${tarball}` } }),
    );
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel', 'error'], { cwd: project, stdio: 'pipe' });
  });
  after(async () => {
    await stack?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('the tarball holds JavaScript, .d.ts, its manifest and README; an exports map, no side effects, nothing private', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').sort();
    const unexpected = files.filter((file) => !/^package\/(.+\.(js|d\.ts)|package\.json|README\.md)$/.test(file));
    assert.deepEqual(unexpected, []);
    assert.ok(files.includes('package/index.js') && files.includes('package/index.d.ts'), JSON.stringify(files));
    const manifest = JSON.parse(execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' }));
    assert.equal(manifest.type, 'module');
    assert.equal(manifest.sideEffects, false);
    assert.equal(manifest.private, undefined);
    assert.deepEqual(manifest.exports['.'], { types: './index.d.ts', default: './index.js' });
    assert.deepEqual(manifest.exports['./errors'], { types: './errors.d.ts', default: './errors.js' });
    assert.equal(manifest.version, JSON.parse(readFileSync(path.join(import.meta.dirname, '../../clients/sdk/package.json'), 'utf8')).version);
  });

  it('a plain Node project runs a query and a subscription with it against the gateway', async () => {
    const project = path.join(scratch, 'app');
    writeFileSync(
      path.join(project, 'use.mjs'),
      `import { createClient, SwiftCartError } from '@swiftcart/sdk';
const client = createClient({ url: process.env.GATEWAY_URL });
const { product } = await client.product({ sku: '${SKU}' });
const levels = client.stockLevelChanged({ skus: ['${SKU}'] });
const first = await levels.next();
await levels.return();
const refused = await client.browseProducts({ first: 0 }).catch((error) => error instanceof SwiftCartError && error.code);
await client.close();
console.log(JSON.stringify({ name: product.name, available: first.value.stockLevelChanged.available, refused }));
`,
    );
    // Not execFileSync: the gateway it calls runs in this process.
    const { stdout } = await run(process.execPath, ['use.mjs'], { cwd: project, env: { ...process.env, GATEWAY_URL: stack.gateway!.url } });
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { name: 'Packaged', available: 12, refused: 'BAD_USER_INPUT' });
  });

  it('a scratch Vite app builds with it for browsers and React Native, and its bundle asks for no Node built-in', async () => {
    const project = path.join(scratch, 'app');
    const app = await viteBuild(
      project,
      `import { createClient } from '@swiftcart/sdk';\nexport const client = createClient({ url: '/graphql' });\nwindow.client = client;\n`,
    );
    assert.deepEqual(app.builtins, []);
    assert.match(app.js, /stockLevelChanged/, 'the SDK is in the bundle');
    // The recorder itself catches a built-in.
    const broken = await viteBuild(project, `import { EventEmitter } from 'node:events';\nwindow.e = new EventEmitter();\n`).catch(() => ({
      builtins: ['(the build failed on it)'],
      js: '',
    }));
    assert.notDeepEqual(broken.builtins, []);
  });
});
