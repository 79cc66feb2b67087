/**
 * platform/src/bundle.ts with a real Vite build of a one-file bundle in a temporary folder: stale
 * until built and again after a source changes, one build for callers that arrive together, a
 * lock left by a dead build taken over, and no file served from outside the build.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BUNDLE_LOCK_STALE_MS, Bundle } from '../src/bundle.ts';

const root = mkdtempSync(path.join(tmpdir(), 'swiftcart-bundle-test-'));
const entry = path.join(root, 'main.js');
writeFileSync(entry, 'document.title = "bundle test";\n');

/** The build as if made before the source's last change (a source in the future would stay newer than every build). */
function makeStale(): void {
  const before = new Date(Date.now() - 60_000);
  utimesSync(path.join(root, 'dist', '.build-stamp'), before, before);
}

function bundle(): Bundle {
  return new Bundle({
    name: 'bundle test',
    outDir: path.join(root, 'dist'),
    sources: [entry],
    vite: { root, logLevel: 'silent', build: { manifest: true, rollupOptions: { input: entry } } },
  });
}

describe('Bundle', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('is stale until built, current after, and stale again when a source is newer than the build', async () => {
    const b = bundle();
    assert.equal(b.isStale(), true);
    assert.equal(await b.buildIfStale(), true);
    assert.equal(b.isStale(), false);
    assert.equal(await b.buildIfStale(), false, 'current: nothing to build');
    makeStale();
    assert.equal(b.isStale(), true);
  });

  it('callers arriving together build once; the others wait and find it current', async () => {
    makeStale();
    const built = await Promise.all([bundle().buildIfStale(), bundle().buildIfStale(), bundle().buildIfStale()]);
    assert.deepEqual(built.filter(Boolean).length, 1, `one build among ${JSON.stringify(built)}`);
  });

  it('takes over a lock left by a build that died', async () => {
    const b = bundle();
    mkdirSync(b.lock);
    const old = new Date(Date.now() - BUNDLE_LOCK_STALE_MS - 1_000);
    utimesSync(b.lock, old, old);
    makeStale();
    assert.equal(await b.buildIfStale(), true, 'a dead lock does not stop the build');
    assert.equal(existsSync(b.lock), false, 'and the lock is released after it');
  });

  it('serves only files inside the build', () => {
    const b = bundle();
    assert.ok(b.file('/.vite/manifest.json'), 'a built file');
    assert.equal(b.file('/../main.js'), null);
    assert.equal(b.file('/../../etc/passwd'), null);
    assert.equal(b.file('/missing.js'), null);
    assert.equal(b.file('/'), null, 'a folder is not a file');
  });
});
