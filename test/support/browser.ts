/**
 * What the browser tests share (not a test file): how Chromium is launched in this container, and
 * where screenshots go.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform/config';

/** Chromium flags for a container without a GPU, sandbox or network services. */
const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Chromium's flags for this container, a fresh array for `chromium.launch({ args })`. */
export function chromiumArgs(): string[] {
  return [...CHROMIUM_ARGS];
}

/**
 * Where a test writes its screenshots: docs/images/ with `UPDATE_SCREENSHOTS=1` (the README's
 * pictures), else a fresh temporary folder, so `npm test` leaves the checkout clean.
 */
export function screenshotDir(): string {
  return process.env.UPDATE_SCREENSHOTS === '1' ? path.join(REPO_ROOT, 'docs', 'images') : mkdtempSync(path.join(tmpdir(), 'swiftcart-screenshots-'));
}
