/**
 * The offline explorer: GraphiQL served by the gateway itself, outside production, at
 * {@link EXPLORER_PATH}. Apollo Sandbox (sandbox.ts) loads from Apollo's CDN; where the browser
 * cannot reach it, the Sandbox page loads this explorer instead, with the same endpoints, token and
 * example operations. The bundle (gateway/explorer: the `graphiql` packages from npm, React and
 * Monaco's workers) is built by Vite into `gateway/explorer/dist`; `npm start`'s gateway builds it
 * when it is missing or stale, and `npm run explorer:build` builds it by hand.
 *
 * Run `node gateway/src/explorer.ts` to build it (what `npm run explorer:build` does).
 */
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Bundle } from '@swiftcart/platform/bundle';
import { isMain } from '@swiftcart/platform/config';
import { CONFIG_ELEMENT_ID, type ExplorerConfig, MOUNT_ELEMENT_ID } from '../explorer/wire.ts';

export { CONFIG_ELEMENT_ID, MOUNT_ELEMENT_ID, type ExplorerConfig };

/** Where the explorer's page is served; its files are under this path plus `/assets/`. */
export const EXPLORER_PATH = '/graphiql';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'explorer');
const DIST = path.join(ROOT, 'dist');
const ENTRY = 'main.ts';

/** The explorer's bundle (platform/src/bundle.ts): `gateway/explorer/*.ts` and the packages it bundles. */
export const EXPLORER_BUNDLE = new Bundle({
  name: 'explorer',
  outDir: DIST,
  // The packages count too: an upgrade of graphiql must not keep serving the old build.
  // So do this module (Vite's options, the path) and the build helper.
  sources: [
    path.join(ROOT, ENTRY),
    path.join(ROOT, 'wire.ts'),
    fileURLToPath(import.meta.url),
    fileURLToPath(import.meta.resolve('@swiftcart/platform/bundle')),
    path.join(ROOT, '..', '..', 'package-lock.json'),
  ],
  vite: {
    root: ROOT,
    // Relative: the bundle's own imports, workers and fonts resolve against its script's URL, so it
    // also works behind a proxy that serves the gateway under a path (PUBLIC_GATEWAY_URL=https://host/api/graphql).
    base: './',
    // Vite's warnings here are about GraphiQL's own size and code (Monaco is large): nothing a
    // person running the platform can act on, and a quiet start is part of the platform.
    logLevel: 'error',
    build: { manifest: true, chunkSizeWarningLimit: 20_000, rollupOptions: { input: path.join(ROOT, ENTRY) } },
    worker: { format: 'es' },
  },
});

/**
 * The built entry: its script and stylesheets, as URLs relative to the gateway's pages (`/`,
 * `/graphql`, {@link EXPLORER_PATH}), e.g. `graphiql/assets/main-1a2b.js`, so that a page reached
 * through a proxy under a path loads them through it too.
 */
export interface ExplorerAssets {
  readonly script: string;
  readonly styles: readonly string[];
}

let cached: { stamp: number; assets: ExplorerAssets } | null = null;

/** The built entry from Vite's manifest, or null while there is no build. Read again after each build. */
export function explorerAssets(): ExplorerAssets | null {
  const manifest = path.join(DIST, '.vite', 'manifest.json');
  let stamp: number;
  try {
    stamp = statSync(manifest).mtimeMs;
  } catch {
    return null;
  }
  if (cached?.stamp !== stamp) {
    let chunks: Record<string, { file: string; css?: string[]; imports?: string[] }>;
    try {
      chunks = JSON.parse(readFileSync(manifest, 'utf8'));
    } catch {
      return null; // being written by a build in another process: no explorer on this page
    }
    const entry = chunks[ENTRY];
    if (!entry) return null;
    // The entry's stylesheets and those of the chunks it imports statically; Vite's own loader adds
    // those of chunks imported later.
    const styles = new Set<string>();
    const seen = new Set<string>();
    const collect = (key: string) => {
      if (seen.has(key) || !chunks[key]) return;
      seen.add(key);
      for (const css of chunks[key].css ?? []) styles.add(css);
      for (const imported of chunks[key].imports ?? []) collect(imported);
    };
    collect(ENTRY);
    const url = (file: string) => `${EXPLORER_PATH.slice(1)}/${file}`;
    cached = { stamp, assets: { script: url(entry.file), styles: [...styles].map(url) } };
  }
  return cached.assets;
}

/**
 * The Content-Security-Policy of a page that may run the explorer. Scripts: the page's nonce'd ones
 * and the gateway's own files. Styles: inline too, because Monaco writes `<style>` elements as it
 * runs. Workers: the gateway's own (Monaco's language workers). Requests and WebSockets: the page's
 * origin and the two endpoints (which differ from it behind a proxy). `extra` adds sources per
 * directive (Sandbox's CDN and frame), or drops a directive (null).
 */
export function explorerCsp(config: ExplorerConfig, nonce: string, extra: Readonly<Record<string, readonly string[] | null>> = {}): string {
  const directives: Record<string, string[]> = {
    'default-src': ["'self'"],
    'script-src': ["'self'", `'nonce-${nonce}'`],
    'style-src': ["'self'", "'unsafe-inline'"],
    'worker-src': ["'self'"],
    'connect-src': ["'self'", new URL(config.endpoint).origin, new URL(config.subscriptionEndpoint).origin],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'", 'data:'],
  };
  for (const [directive, sources] of Object.entries(extra)) {
    if (sources === null) delete directives[directive];
    else directives[directive] = [...(directives[directive] ?? []), ...sources];
  }
  return Object.entries(directives)
    .map(([directive, sources]) => `${directive} ${[...new Set(sources)].join(' ')}`)
    .join('; ');
}

/** JSON that is safe inside a `<script>` element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value, null, 2)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Text that is safe in HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The configuration element and the mount point: what the bundle needs on any page that loads it. */
export function explorerElements(config: ExplorerConfig): string {
  return `<div id="${MOUNT_ELEMENT_ID}"></div>
    <script type="application/json" id="${CONFIG_ELEMENT_ID}">${scriptJson(config)}</script>`;
}

/** What a page says while the explorer is not built. */
export const NOT_BUILT_HINT = '<code>npm start</code> builds it when the gateway starts; or run <code>npm run explorer:build</code>, then reload this page.';

/** One of the gateway's own pages: the document around `body`, under `csp`. `head` and `body` are HTML already. */
export function htmlPage(page: {
  readonly title: string;
  readonly csp: string;
  readonly head?: string;
  readonly style: string;
  readonly body: string;
}): string {
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta http-equiv="Content-Security-Policy" content="${escapeHtml(page.csp)}" />
    <meta name="viewport" content="width=device-width,initial-scale=1" />
    <title>${escapeHtml(page.title)}</title>
${page.head ?? ''}    <style>${page.style}
    </style>
  </head>
  <body>
    ${page.body}
  </body>
</html>
`;
}

/** Sends a page on GET, its headers alone on HEAD. It may carry a token that is renewed: never from a cache. */
export function sendPage(req: IncomingMessage, res: ServerResponse, page: string): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : page);
}

/** The page at {@link EXPLORER_PATH}: GraphiQL alone, or where it is not built, how to build it. */
export function renderExplorerPage(config: ExplorerConfig, nonce: string, assets: ExplorerAssets | null): string {
  const body = assets
    ? `${explorerElements(config)}
    <script type="module" nonce="${nonce}" src="${escapeHtml(assets.script)}"></script>`
    : `<main>
      <h1>SwiftCart · GraphiQL</h1>
      <p>The explorer is not built yet. ${NOT_BUILT_HINT}</p>
      <p>Queries and mutations: <code>${escapeHtml(config.endpoint)}</code> (HTTP POST); subscriptions:
      <code>${escapeHtml(config.subscriptionEndpoint)}</code> (graphql-ws).</p>
    </main>`;
  return htmlPage({
    title: 'SwiftCart · GraphiQL',
    csp: explorerCsp(config, nonce),
    head: (assets?.styles ?? []).map((href) => `    <link rel="stylesheet" href="${escapeHtml(href)}" />\n`).join(''),
    style: `
      body { margin: 0; font-family: system-ui, sans-serif; }
      main { padding: 1em; }
      #${MOUNT_ELEMENT_ID} { position: absolute; inset: 0; }`,
    body,
  });
}

/** The explorer, ready to serve. */
export interface Explorer {
  /** Serves the page at {@link EXPLORER_PATH} and the bundle's files under it; anything else falls through (404). */
  route(req: IncomingMessage, res: ServerResponse): Promise<boolean | void>;
  /** Resolves once a build this gateway started (`build`) has ended; at once when it started none. */
  built(): Promise<void>;
}

/**
 * The explorer's route. `config` is asked on every page request (the token is renewed, the port
 * is bound late). With `build`, the bundle is built now, in the background, when it is missing or
 * stale; a page request waits for that build rather than answering "not built".
 */
export function createExplorer(options: {
  config: () => Promise<ExplorerConfig>;
  nonce: () => string;
  build?: boolean;
  log?: (level: 'info' | 'warn', msg: string) => void;
}): Explorer {
  const log = options.log ?? (() => {});
  const building: Promise<void> = options.build
    ? EXPLORER_BUNDLE.buildIfStale((msg) => log('info', msg)).then(
        () => undefined,
        (error: Error) => log('warn', `the offline explorer could not be built (${error.message}); ${EXPLORER_PATH} explains how to build it`),
      )
    : Promise.resolve();
  return {
    built: () => building,
    async route(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
      await building;
      // With a trailing slash the page's relative URLs would point one level too deep.
      if (pathname === `${EXPLORER_PATH}/`) {
        res.writeHead(308, { location: `../${EXPLORER_PATH.slice(1)}` }).end();
        return;
      }
      if (pathname === EXPLORER_PATH) {
        const nonce = options.nonce();
        return sendPage(req, res, renderExplorerPage(await options.config(), nonce, explorerAssets()));
      }
      // Only what the build emitted under assets/: not the manifest, not the build stamp.
      if (!pathname.startsWith(`${EXPLORER_PATH}/assets/`)) return false;
      const file = EXPLORER_BUNDLE.file(pathname.slice(EXPLORER_PATH.length));
      if (!file) return false;
      EXPLORER_BUNDLE.send(res, file);
    },
  };
}

if (isMain(import.meta.url)) {
  const started = Date.now();
  await EXPLORER_BUNDLE.build();
  console.log(`built the explorer into ${path.relative(process.cwd(), DIST)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
