/**
 * A browser bundle built with Vite from sources in the checkout, rebuilt only when a source is newer
 * than the last build, and one build at a time per checkout: the storefront (clients/storefront)
 * and the gateway's offline explorer (gateway/explorer) are built this way, outside production, on
 * first use. Vite is imported only when a build runs, so a process whose bundle is current (or a
 * production image, which ships the bundle) never loads it.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { InlineConfig } from 'vite';

/** What a bundle is made of and how Vite builds it. */
export interface BundleSpec {
  /** A name for logs and for the lock, e.g. `storefront`. */
  readonly name: string;
  /** Where the build goes; emptied by each build. */
  readonly outDir: string;
  /** Files and folders the bundle is made of: a change to any of them makes the build stale. */
  readonly sources: readonly string[];
  /** Vite's configuration for the build; `outDir` and `emptyOutDir` are set from this spec. */
  readonly vite: InlineConfig;
}

/** A lock older than this was left by a build that died: it is taken over. */
export const BUNDLE_LOCK_STALE_MS = 180_000;

/** The content types of what Vite emits. */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.ttf': 'font/ttf',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** Written after a successful build; its mtime is what "stale" is measured against. */
const STAMP = '.build-stamp';

function newestMtime(target: string): number {
  if (!existsSync(target)) return 0;
  const stat = statSync(target);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(target)) newest = Math.max(newest, newestMtime(path.join(target, entry)));
  return newest;
}

/** A bundle: whether it is current, and building it. */
export class Bundle {
  /**
   * The build lock: a folder (proper-lockfile's), outside outDir (which the build empties) and
   * outside the checkout, one per bundle and checkout.
   */
  readonly lock: string;

  readonly spec: BundleSpec;

  constructor(spec: BundleSpec) {
    this.spec = spec;
    this.lock = path.join(tmpdir(), `swiftcart-${spec.name}-build-${createHash('sha256').update(spec.outDir).digest('hex').slice(0, 12)}.lock`);
  }

  /** True when the build is missing or older than any of its sources. */
  isStale(): boolean {
    const stamp = path.join(this.spec.outDir, STAMP);
    if (!existsSync(stamp)) return true;
    return Math.max(...this.spec.sources.map(newestMtime)) > statSync(stamp).mtimeMs;
  }

  /** Builds now, whatever the state (the Dockerfile's build step). */
  async build(): Promise<void> {
    const { build } = await import('vite');
    const { vite } = this.spec;
    await build({ configFile: false, logLevel: 'warn', ...vite, build: { ...vite.build, outDir: this.spec.outDir, emptyOutDir: true } });
    writeFileSync(path.join(this.spec.outDir, STAMP), new Date().toISOString());
  }

  /**
   * Builds if stale, one build at a time: processes starting together (two browser tests, a
   * gateway and a test) would otherwise empty and write outDir at once. Whoever takes the lock
   * builds; the others wait for it and find the build current. True when this call built.
   */
  async buildIfStale(log: (msg: string) => void = () => {}): Promise<boolean> {
    // proper-lockfile: a lock folder that its holder touches while it builds, so a slow build on a
    // busy machine is not taken for a dead one, and that only its holder removes.
    const release = await lockfile.lock(this.spec.outDir, {
      lockfilePath: this.lock,
      realpath: false,
      stale: BUNDLE_LOCK_STALE_MS,
      retries: { forever: true, minTimeout: 200, maxTimeout: 1_000 },
      // Taken over after all (the process stalled past the stale time): the build goes on; the other
      // builder's result is as good as this one's.
      onCompromised: () => {},
    });
    try {
      if (!this.isStale()) return false;
      log(`building the ${this.spec.name} with Vite (${path.basename(this.spec.outDir)}/ is missing or stale)...`);
      await this.build();
      return true;
    } finally {
      await release().catch(() => undefined);
    }
  }

  /**
   * The built file at `pathname` (a URL path already decoded, relative to outDir), or null when
   * there is none; never a path outside outDir, whatever `..` the request holds.
   */
  file(pathname: string): string | null {
    const file = path.join(this.spec.outDir, path.normalize(`/${pathname}`));
    if (!file.startsWith(this.spec.outDir + path.sep) || !existsSync(file) || statSync(file).isDirectory()) return null;
    return file;
  }

  /**
   * Sends a built file. Vite puts a content hash in the names under `assets/`, so they are cached
   * for a year; anything else is revalidated. A file that cannot be read (never built, or removed
   * under a running server) is answered 503 with a JSON error, not a crash.
   */
  send(res: ServerResponse, file: string): void {
    const stream = createReadStream(file);
    stream.once('error', () => {
      if (!res.headersSent) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `the ${this.spec.name} bundle is not available` }));
      } else res.destroy();
    });
    stream.once('open', () => {
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
      });
      stream.pipe(res);
    });
  }
}
