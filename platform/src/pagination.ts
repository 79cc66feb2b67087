import { badInput } from './errors.ts';

/** Page size when the client gives none. */
export const DEFAULT_PAGE_SIZE = 20;
/** The largest page a client may ask for; bigger requests are refused, not truncated. */
export const MAX_PAGE_SIZE = 100;

const CURSOR_PREFIX = 'c1:';

/** Encodes the sort key of the last row of a page as an opaque cursor. */
export function encodeCursor(key: string): string {
  return Buffer.from(CURSOR_PREFIX + key, 'utf8').toString('base64url');
}

/** Decodes a cursor from {@link encodeCursor}; anything else is BAD_USER_INPUT on `field`. */
export function decodeCursor(cursor: string, field = 'after'): string {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw badInput(`"${field}" is not a valid cursor`, field);
  const decoded = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!decoded.startsWith(CURSOR_PREFIX) || decoded.length === CURSOR_PREFIX.length) {
    throw badInput(`"${field}" is not a valid cursor`, field);
  }
  return decoded.slice(CURSOR_PREFIX.length);
}

/** Checks `first` against 1..{@link MAX_PAGE_SIZE}, defaulting when absent. */
export function pageSize(first: number | null | undefined, field = 'first'): number {
  if (first === null || first === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badInput(`"${field}" must be from 1 to ${MAX_PAGE_SIZE}, got ${first}`, field);
  }
  return first;
}

/** A Relay-style page built from `size + 1` fetched rows (the extra row only says there is more). */
export function toConnection<T>(rows: readonly T[], size: number, keyOf: (row: T) => string, totalCount: number) {
  const page = rows.slice(0, size);
  const edges = page.map((node) => ({ cursor: encodeCursor(keyOf(node)), node }));
  return {
    edges,
    pageInfo: { hasNextPage: rows.length > size, endCursor: edges.at(-1)?.cursor ?? null },
    totalCount,
  };
}
