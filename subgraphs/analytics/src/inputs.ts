/**
 * The arguments of the analytics fields, checked before anything is read: BAD_USER_INPUT with
 * `extensions.field` naming the argument at fault.
 */
import { badInput } from '@swiftcart/platform';
import { type Granularity, MAX_SUMMARY_BUCKETS, countBucketStarts } from './buckets.ts';

/** An ISO-8601 instant with a date, a time and an offset (`Z` or `±hh:mm`): what `DateTime` accepts. */
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/;

/** The most products one `topProducts` returns. */
export const MAX_TOP_PRODUCTS = 100;

/** `value` as an instant, or BAD_USER_INPUT naming `field`. */
export function parseInstant(value: unknown, field: string): Date {
  const match = typeof value === 'string' ? INSTANT.exec(value) : null;
  const ms = match ? Date.parse(value as string) : Number.NaN;
  if (!match || !Number.isFinite(ms)) throw badInput(`${field} must be an ISO-8601 date and time with an offset, e.g. 2026-12-01T00:00:00Z`, field);
  const [, year, month, day, hour, minute, second, offsetHours, offsetMinutes] = match.map(Number);
  // Date.parse rolls 2026-02-30 over into March; a date that does not exist is refused instead.
  const calendar = new Date(Date.UTC(year, month - 1, day));
  const valid =
    calendar.getUTCFullYear() === year &&
    calendar.getUTCMonth() === month - 1 &&
    calendar.getUTCDate() === day &&
    hour < 24 &&
    minute < 60 &&
    (Number.isNaN(second) || second < 60) &&
    (Number.isNaN(offsetHours) || (offsetHours < 24 && offsetMinutes < 60));
  if (!valid) throw badInput(`${field} is not a date and time that exists: "${value as string}"`, field);
  return new Date(ms);
}

/** `value` as a currency code (default `fallback`), or BAD_USER_INPUT naming `currency`. */
export function parseCurrency(value: string | null | undefined, fallback: string): string {
  if (value === null || value === undefined) return fallback;
  if (!/^[A-Z]{3}$/.test(value)) throw badInput(`currency must be an ISO-4217 code of three capital letters, e.g. EUR; got "${value}"`, 'currency');
  return value;
}

/** [from, to) as instants, from strictly before to, or BAD_USER_INPUT naming the argument at fault. */
export function parseRange(from: unknown, to: unknown): { from: Date; to: Date } {
  const range = { from: parseInstant(from, 'from'), to: parseInstant(to, 'to') };
  if (range.from.getTime() >= range.to.getTime()) throw badInput('to must be after from', 'to');
  return range;
}

/** A summary's range, which may hold at most {@link MAX_SUMMARY_BUCKETS} buckets. */
export function parseSummaryRange(from: unknown, to: unknown, granularity: Granularity): { from: Date; to: Date } {
  const range = parseRange(from, to);
  const count = countBucketStarts(granularity, range.from, range.to);
  if (count > MAX_SUMMARY_BUCKETS) {
    throw badInput(
      `from ${range.from.toISOString()} to ${range.to.toISOString()} holds ${count} buckets of ${granularity}; at most ${MAX_SUMMARY_BUCKETS} are returned at once`,
      'to',
    );
  }
  return range;
}

/** `first`, 1 to {@link MAX_TOP_PRODUCTS}, or BAD_USER_INPUT naming `first`. */
export function parseFirst(value: number | null | undefined): number {
  const first = value ?? 10;
  if (!Number.isInteger(first) || first < 1 || first > MAX_TOP_PRODUCTS) throw badInput(`first must be from 1 to ${MAX_TOP_PRODUCTS}, got ${first}`, 'first');
  return first;
}
