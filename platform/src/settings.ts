/**
 * How a process declares the environment variables it reads: one zod object schema per owner (the
 * platform, the gateway, each service), keyed by the variables' names. Each field is made by one of
 * the builders below, which keep its parsing, its default and the default's wording together, and
 * gets its meaning with `.describe()`; cross-field rules are `.superRefine` on the object. The
 * platform parses a schema once ({@link parseSettings}), and the README's configuration tables are
 * generated from the same schemas ({@link describeSettings}, scripts/config-docs.ts), so what is
 * documented is what is accepted. How to add a setting: docs/conventions.md, "Settings".
 */
import { z } from 'zod';

// Services and the gateway declare their schemas with the platform's zod, so one version parses them all.
export { z };

/** The environment a schema is parsed from: `process.env`, or a test stack's copy of it. */
export type SettingsEnv = Readonly<Record<string, string | undefined>>;

/** Thrown when an environment variable holds something that cannot be used. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** What the configuration tables show of a setting besides its `.describe()` text. */
interface SettingDocs {
  /** Markdown: the default's value and, where it helps, what it means (`600000` (10 minutes)). */
  readonly default: string;
  /** Markdown: what the variable accepts (bounds, values, protocols), appended to the meaning after a dash. */
  readonly accepts?: string;
  /** Set on a variable that is no longer read: what replaced it. Left out of the tables. */
  readonly replacedBy?: string;
}

/** A variable's value was refused; caught by {@link setting} and reported as a zod issue. */
class InvalidSetting extends Error {}

/** Refuses the value being read with `message`, which follows the variable's name ("must be ..."). */
export function invalid(message: string): never {
  throw new InvalidSetting(message);
}

/**
 * A setting parsed by `read`, which gets the raw value (undefined when the variable is unset) and
 * returns the typed one or calls {@link invalid}. The builders below cover the usual kinds; this is
 * for the few that need their own rules (a list of CIDR ranges).
 */
export function setting<T>(read: (raw: string | undefined) => T, docs: SettingDocs): z.ZodType<T, string | undefined> {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      try {
        return read(raw);
      } catch (error) {
        if (!(error instanceof InvalidSetting)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message, input: raw });
        return z.NEVER;
      }
    })
    .meta({ ...docs });
}

const DURATION_UNITS = [
  [86_400_000, 'day'],
  [3_600_000, 'hour'],
  [60_000, 'minute'],
  [1_000, 's'],
] as const;

const grouped = (n: number) => n.toLocaleString('en-US');

/** `604800000` → `7 days`, `1500` → `1,500 ms`: how the tables word a duration. */
export function formatDuration(ms: number): string {
  for (const [size, unit] of DURATION_UNITS) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return unit === 's' ? `${grouped(n)} s` : `${grouped(n)} ${unit}${n === 1 ? '' : 's'}`;
    }
  }
  return `${grouped(ms)} ms`;
}

/** What an integer counts: milliseconds and seconds are worded as durations in the tables. */
export type IntegerUnit = 'ms' | 's';

function worded(n: number, unit: IntegerUnit | undefined): string {
  if (n === 0) return '0';
  if (unit === 'ms') return formatDuration(n);
  if (unit === 's') return n % 60 === 0 ? formatDuration(n * 1_000) : `${grouped(n)} s`;
  return grouped(n);
}

/** `600000` (10 minutes): the value, and the duration it is when that reads better. */
function defaultWording(value: number, unit: IntegerUnit | undefined): string {
  const ms = unit === 'ms' ? value : unit === 's' ? value * 1_000 : 0;
  const readable = ms > 0 && ms % (unit === 's' ? 60_000 : 1_000) === 0;
  return readable ? `\`${value}\` (${formatDuration(ms)})` : `\`${value}\``;
}

/**
 * A whole number from `min` to `max`, `default` when unset or blank (undefined: the variable is
 * optional). Digits only, an optional minus sign included: `Number()` would also take "0x10", "1e3"
 * or "1.0", which nobody means. `defaultText` replaces the default's wording where the default
 * depends on the machine (one partition per core).
 */
export function integer<D extends number | undefined>(options: {
  readonly default: D;
  readonly min: number;
  readonly max: number;
  readonly unit?: IntegerUnit;
  readonly defaultText?: string;
}): z.ZodType<number | D, string | undefined> {
  const { min, max, unit } = options;
  const defaultText = options.defaultText ?? (options.default === undefined ? 'unset' : defaultWording(options.default, unit));
  return setting(
    (raw): number | D => {
      const trimmed = raw?.trim();
      if (trimmed === undefined || trimmed === '') return options.default;
      const value = /^-?\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
      if (!Number.isSafeInteger(value) || value < min || value > max) invalid(`must be an integer from ${min} to ${max}, got "${raw}"`);
      return value;
    },
    { default: defaultText, accepts: max === Number.MAX_SAFE_INTEGER ? `${worded(min, unit)} or more` : `${worded(min, unit)} to ${worded(max, unit)}` },
  );
}

const quoted = (values: readonly string[]) => values.map((v) => `\`${v}\``);

/** `a`, `b` or `c`, for the tables. */
function alternatives(values: readonly string[]): string {
  const q = quoted(values);
  return q.length === 1 ? q[0] : `${q.slice(0, -1).join(', ')} or ${q.at(-1)}`;
}

/**
 * One of `values`, case-insensitive, `default` when unset or blank (undefined: chosen later, from
 * other settings; say how in `defaultText`).
 */
export function oneOf<const T extends string, D extends T | undefined>(
  values: readonly T[],
  options: { readonly default: D; readonly defaultText?: string },
): z.ZodType<T | D, string | undefined> {
  const allowed: readonly string[] = values;
  return setting(
    (raw): T | D => {
      const value = raw?.trim().toLowerCase();
      if (!value) return options.default;
      if (!allowed.includes(value)) {
        invalid(values.length === 2 ? `must be "${values[0]}" or "${values[1]}", got "${raw}"` : `must be one of ${values.join(', ')}, got "${raw}"`);
      }
      return value as T;
    },
    { default: options.defaultText ?? (options.default === undefined ? 'unset' : `\`${options.default}\``), accepts: alternatives(values) },
  );
}

/** Why `raw` is no URL with one of `protocols`, or null when it is one. */
function urlProblem(raw: string, protocols: readonly string[]): string | null {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return `must be a URL, got "${raw}"`;
  }
  return protocols.includes(parsed.protocol) ? null : `must use ${protocols.join(' or ')}, got "${raw}"`;
}

/** An absolute URL with one of `protocols` (`http:`), `default` when unset or empty (undefined: optional). */
export function url<D extends string | undefined>(options: {
  readonly default: D;
  readonly protocols: readonly string[];
  readonly defaultText?: string;
}): z.ZodType<string | D, string | undefined> {
  return setting(
    (raw): string | D => {
      if (!raw) return options.default;
      const problem = urlProblem(raw, options.protocols);
      if (problem) invalid(problem);
      return raw;
    },
    { default: options.defaultText ?? (options.default === undefined ? 'unset' : `\`${options.default}\``), accepts: `${alternatives(options.protocols)} URL` },
  );
}

/** Splits a comma-separated value, dropping blanks. */
export function commaList(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
}

/** Comma-separated URLs with one of `protocols`; none when unset. */
export function urlList(options: { readonly protocols: readonly string[]; readonly defaultText: string }): z.ZodType<readonly string[], string | undefined> {
  return setting(
    (raw) =>
      commaList(raw).map((entry) => {
        const problem = urlProblem(entry, options.protocols);
        return problem ? invalid(problem) : entry;
      }),
    { default: options.defaultText, accepts: `comma-separated ${alternatives(options.protocols)} URLs` },
  );
}

/**
 * Free text, `default` when unset. `emptyIsUnset` (the default) also takes an empty value for
 * unset; without it an empty value stands (an empty key prefix). `pattern` refuses anything else
 * with `must be <patternText>`.
 */
export function text<D extends string | undefined>(options: {
  readonly default: D;
  readonly defaultText?: string;
  readonly emptyIsUnset?: boolean;
  readonly pattern?: RegExp;
  readonly patternText?: string;
}): z.ZodType<string | D, string | undefined> {
  const { pattern, patternText } = options;
  return setting(
    (raw): string | D => {
      const value = raw === undefined || (raw === '' && options.emptyIsUnset !== false) ? options.default : raw;
      if (value !== undefined && pattern && !pattern.test(value)) invalid(`must be ${patternText ?? `like ${pattern}`}, got "${value}"`);
      return value;
    },
    {
      default: options.defaultText ?? (options.default === undefined ? 'unset' : options.default === '' ? 'empty' : `\`${options.default}\``),
      accepts: patternText,
    },
  );
}

/** `true` or anything else (false), OpenTelemetry's reading of its boolean variables. */
export function flag(): z.ZodType<boolean, string | undefined> {
  return setting((raw) => raw?.trim().toLowerCase() === 'true', { default: '`false`', accepts: '`true` or `false`' });
}

/**
 * A variable that is no longer read. Any value is refused, naming what replaced it: ignoring it
 * silently would change behaviour unnoticed. Left out of the configuration tables.
 */
export function replaced(replacedBy: string): z.ZodType<undefined, string | undefined> {
  return setting((raw) => (raw === undefined ? undefined : invalid(`is no longer read: ${replacedBy}`)), { default: 'unset', replacedBy });
}

/** A process's settings: a zod object schema keyed by variable name, possibly refined and transformed. */
export type SettingsSchema<T = unknown> = z.ZodType<T>;

/** The settings of a service that has none of its own. */
export const noSettings = z.object({});

/** A schema's issue as a sentence: the variable's name, then what is wrong with it. */
function sentence(issue: z.core.$ZodIssue): string {
  return issue.path.length ? `${issue.path.map(String).join('.')} ${issue.message}` : issue.message;
}

/**
 * Parses `env` with `schema`; throws one {@link ConfigError} naming every variable at fault, e.g.
 * `ORDER_DEADLINE_MS must be an integer from 100 to 604800000, got "abc"`.
 */
export function parseSettings<T>(schema: SettingsSchema<T>, env: SettingsEnv): T {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.map(sentence).join('; '));
}

/** One row of a configuration table. */
export interface SettingRow {
  readonly variable: string;
  /** Markdown. */
  readonly default: string;
  /** Markdown: the `.describe()` text, then what the variable accepts. */
  readonly meaning: string;
}

/** The object schema under refinements and transforms (`.transform()` makes a pipe whose input it is). */
function objectOf(schema: z.ZodType): z.ZodObject {
  if (schema instanceof z.ZodObject) return schema;
  if (schema instanceof z.ZodPipe) return objectOf(schema.in as z.ZodType);
  throw new Error('a settings schema must be a zod object keyed by variable name');
}

/**
 * The configuration table of a schema, in declaration order. Throws for a field without a
 * description or a builder's default: an undocumented setting is a mistake the stale-docs test catches.
 */
export function describeSettings(schema: SettingsSchema): SettingRow[] {
  return Object.entries(objectOf(schema).shape).flatMap(([variable, field]): SettingRow[] => {
    const meta = z.globalRegistry.get(field as z.ZodType) as (Partial<SettingDocs> & { description?: string }) | undefined;
    if (meta?.replacedBy) return [];
    if (!meta?.description || meta.default === undefined)
      throw new Error(`setting ${variable} needs a builder of platform/src/settings.ts and a .describe() text`);
    return [{ variable, default: meta.default, meaning: meta.accepts ? `${meta.description} — ${meta.accepts}` : meta.description }];
  });
}
