/**
 * Generates the TypeScript types of every event's `data` from the contracts in `schema/events/`
 * (json-schema-to-typescript), plus the table of what each contract fixes in its envelope (version,
 * publisher, aggregate type) and which data field is the aggregate id. Producers and consumers are
 * typed from it, so a contract change that the code does not follow fails the type check.
 *
 * `npm run generate:events` writes platform/src/generated/events.ts; `--check` exits 1 when the
 * checked-in file is stale (a test runs the same comparison).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import { REPO_ROOT, isMain } from '../platform/src/config.ts';
import { writeOrCheck } from './generated-file.ts';

/** Where the generated module is checked in. */
export const EVENT_TYPES_FILE = path.join(REPO_ROOT, 'platform', 'src', 'generated', 'events.ts');
const DEFAULT_SCHEMA_DIR = path.join(REPO_ROOT, 'schema', 'events');
const EVENT_SCHEMA_FILE = /^([A-Z][A-Za-z0-9]*)\.v([1-9][0-9]*)\.json$/;

/**
 * The data field that holds each aggregate's id (the envelope's `aggregateId`, the Kafka key). A
 * contract with another aggregate type must be added here, so the envelope factory never guesses.
 */
export const AGGREGATE_ID_FIELDS: Readonly<Record<string, string>> = { Customer: 'customerId', Order: 'orderId', Product: 'sku', Stock: 'sku' };

interface Contract {
  readonly type: string;
  readonly version: number;
  readonly source: string;
  readonly aggregateType: string;
  readonly aggregateIdField: string;
  readonly data: Record<string, unknown>;
  readonly defs: Record<string, unknown>;
}

type Schema = Record<string, unknown>;

function constOf(schema: Schema, property: string, file: string): string | number {
  const value = (schema.properties as Record<string, Schema> | undefined)?.[property]?.const;
  if (typeof value !== 'string' && typeof value !== 'number') throw new Error(`${file}: properties.${property} must be a const`);
  return value;
}

function readContracts(dir: string): Contract[] {
  return readdirSync(dir)
    .sort()
    .flatMap((file) => {
      const match = EVENT_SCHEMA_FILE.exec(file);
      if (!match) return [];
      const schema = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Schema;
      const aggregateType = String(constOf(schema, 'aggregateType', file));
      const aggregateIdField = AGGREGATE_ID_FIELDS[aggregateType];
      if (!aggregateIdField)
        throw new Error(`${file}: no aggregate id field is known for aggregate type ${aggregateType} (AGGREGATE_ID_FIELDS in scripts/event-types.ts)`);
      const data = (schema.properties as Record<string, Schema>).data;
      if (!(data.required as string[] | undefined)?.includes(aggregateIdField)) {
        throw new Error(`${file}: data must require "${aggregateIdField}", the ${aggregateType} aggregate's id`);
      }
      return [
        {
          type: match[1],
          version: Number(match[2]),
          source: String(constOf(schema, 'source', file)),
          aggregateType,
          aggregateIdField,
          data,
          defs: (schema.$defs as Record<string, unknown> | undefined) ?? {},
        },
      ];
    });
}

const capitalise = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);
const singular = (word: string) => (word.endsWith('ies') ? `${word.slice(0, -3)}y` : word.endsWith('s') ? word.slice(0, -1) : word);

/**
 * A copy of `schema` ready for the compiler: a `$ref`'s sibling keywords are dropped (each would make
 * a new copy of the referenced type, `Money1`), and every nested object without a title gets one from
 * where it stands (`OrderPlacedItem`), so arrays name their element type and can be made readonly.
 */
function prepare(schema: unknown, name: string): unknown {
  if (Array.isArray(schema)) return schema.map((item) => prepare(item, name));
  if (typeof schema !== 'object' || schema === null) return schema;
  const source = schema as Schema;
  if (typeof source.$ref === 'string') return { $ref: source.$ref };
  const copy: Schema = {};
  for (const [key, value] of Object.entries(source)) {
    if (key === 'properties') {
      copy.properties = Object.fromEntries(Object.entries(value as Schema).map(([prop, sub]) => [prop, prepare(sub, `${name}${capitalise(prop)}`)]));
    } else if (key === 'items') {
      copy.items = prepare(value, singular(name));
    } else {
      copy[key] = prepare(value, name);
    }
  }
  if (copy.type === 'object' && copy.title === undefined) copy.title = name;
  return copy;
}

/** Readonly properties and arrays, as the platform's envelopes are: nothing a handler gets is to be changed. */
function readonly(source: string): string {
  return source.replace(/^(\s+)([A-Za-z_$][\w$]*\??): /gm, '$1readonly $2: ').replace(/: ([A-Za-z_$][\w$]*)\[\];/g, ': readonly $1[];');
}

/** The generated module for the contracts in `dir`. Throws when two contracts define one `$defs` name differently. */
export async function renderEventTypes(dir: string = DEFAULT_SCHEMA_DIR): Promise<string> {
  const contracts = readContracts(dir);
  const latest = new Map<string, Contract>();
  for (const contract of contracts) {
    if ((latest.get(contract.type)?.version ?? 0) < contract.version) latest.set(contract.type, contract);
  }
  const defs: Schema = {};
  for (const contract of contracts) {
    for (const [name, def] of Object.entries(contract.defs)) {
      if (name in defs && !isDeepStrictEqual(defs[name], def)) {
        throw new Error(`$defs.${name} differs between contracts (${contract.type}.v${contract.version} and an earlier one): one name, one shape`);
      }
      defs[name] = def;
    }
  }
  const baseName = (contract: Contract) => (latest.get(contract.type) === contract ? contract.type : `${contract.type}V${contract.version}`);
  const properties: Schema = {};
  for (const contract of contracts) {
    properties[`${baseName(contract)}Data`] = prepare({ ...contract.data, title: `${baseName(contract)}Data` }, baseName(contract));
  }
  const root = {
    title: 'EventDataMap',
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties),
    properties,
    $defs: Object.fromEntries(Object.entries(defs).map(([name, def]) => [name, prepare({ ...(def as Schema), title: name }, name)])),
  };
  const compiled = await compile(root as JSONSchema, 'EventDataMap', {
    bannerComment: '',
    additionalProperties: false,
    ignoreMinAndMaxItems: true,
    unreachableDefinitions: false,
    format: true,
    style: { singleQuote: true, printWidth: 120 },
  });
  // The compiler's root interface maps data type names to themselves; the map wanted is by event type.
  const body = readonly(compiled.replace(/^export interface EventDataMap \{[\s\S]*?^\}\n/m, ''));
  const map = [...latest.values()].map((c) => `  readonly ${c.type}: ${c.type}Data;`).join('\n');
  const table = [...latest.values()]
    .map(
      (c) => `  ${c.type}: { version: ${c.version}, source: '${c.source}', aggregateType: '${c.aggregateType}', aggregateIdField: '${c.aggregateIdField}' },`,
    )
    .join('\n');
  return `// Generated by scripts/event-types.ts from schema/events/*.json: run \`npm run generate:events\`, do not edit.

/** The data of each event type at its current version, by type. */
export interface EventDataMap {
${map}
}

/** What each event type's current contract fixes in its envelope, and the data field that is its aggregate id. */
export const EVENT_CONTRACTS = {
${table}
} as const;
${body.trimEnd()}
`;
}

if (isMain(import.meta.url)) await writeOrCheck(EVENT_TYPES_FILE, () => renderEventTypes(), 'npm run generate:events');
