/**
 * The command-line half of every generator of a checked-in file (the supergraph, the API schema, the
 * event types, the configuration table): write the file, or with `--check` exit 1 when it is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../platform/src/config.ts';

/**
 * Writes `render()`'s text to `file`, or, when the process was started with `--check`, exits 1
 * naming `command` if the checked-in file differs. Any error ends the process with its message and 1.
 */
export async function writeOrCheck(file: string, render: () => string | Promise<string>, command: string): Promise<void> {
  const name = path.relative(REPO_ROOT, file);
  try {
    const text = await render();
    if (process.argv.includes('--check')) {
      if (readFileSync(file, 'utf8') !== text) {
        console.error(`${name} is stale: run \`${command}\` and commit it`);
        process.exit(1);
      }
      console.log(`${name} is up to date`);
    } else {
      writeFileSync(file, text);
      console.log(`wrote ${name}`);
    }
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
}
