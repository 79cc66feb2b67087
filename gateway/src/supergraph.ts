/**
 * Reading the supergraph file and deciding where each subgraph is routed. Nothing here knows
 * SwiftCart's five services: any composed Federation 2 supergraph works.
 */
import { readFile } from 'node:fs/promises';

/** The supergraph file is missing, unreadable or not a supergraph. */
export class SupergraphError extends Error {
  override name = 'SupergraphError';
}

/** Reads the supergraph SDL; a missing or empty file is a {@link SupergraphError} that names the path. */
export async function readSupergraph(path: string): Promise<string> {
  let sdl: string;
  try {
    sdl = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EISDIR' ? 'it is a directory' : (error as Error).message;
    throw new SupergraphError(`Cannot read the supergraph at ${path}: ${why}. Set SUPERGRAPH_PATH to a composed supergraph, or run \`npm run compose\`.`, {
      cause: error,
    });
  }
  if (sdl.trim() === '') throw new SupergraphError(`The supergraph at ${path} is empty. Run \`npm run compose\` to compose it.`);
  return sdl;
}

/** Checks that every override is an absolute http(s) URL; the error names the subgraph. */
export function validateOverrides(overrides: Readonly<Record<string, readonly string[] | undefined>>): void {
  for (const [name, url] of Object.entries(overrides).flatMap(([n, urls]) => (urls ?? []).map((u) => [n, u] as const))) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new SupergraphError(`The routing URL override for subgraph "${name}" is not a URL: "${url}"`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new SupergraphError(`The routing URL override for subgraph "${name}" must be http or https: "${url}"`);
    }
  }
}
