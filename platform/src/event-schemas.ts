/**
 * The event contracts: one JSON Schema per event type and version in `schema/events/`, named
 * `<Type>.v<version>.json`, each validating the whole envelope including `data`. Producers (the
 * outbox) and consumers (the inbox) validate every event against it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { REPO_ROOT } from './config.ts';
import type { AnyEventEnvelope } from './events.ts';

/** Where the event schemas live: `schema/events/` in the repository. */
export const DEFAULT_EVENT_SCHEMA_DIR = path.join(REPO_ROOT, 'schema', 'events');

/** `<Type>.v<version>.json`; any other `*.json` in the directory is a shared schema others may `$ref`. */
const EVENT_SCHEMA_FILE = /^([A-Z][A-Za-z0-9]*)\.v([1-9][0-9]*)\.json$/;
const DRAFT_2020 = /json-schema\.org\/draft\/2020-12\/schema/;

/** An event that is not a valid instance of its contract, or has no contract. */
export class EventValidationError extends Error {
  override name = 'EventValidationError';
  readonly eventType: string | undefined;
  readonly eventVersion: number | undefined;
  /** Ajv's errors; empty for an unknown type or version. */
  readonly errors: readonly ErrorObject[];

  constructor(message: string, eventType?: string, eventVersion?: number, errors: readonly ErrorObject[] = []) {
    super(message);
    this.eventType = eventType;
    this.eventVersion = eventVersion;
    this.errors = errors;
  }
}

type AjvInstance = InstanceType<typeof Ajv.default> | InstanceType<typeof Ajv2020.default>;

function newAjv(draft2020: boolean): AjvInstance {
  const options = {
    allErrors: true,
    // Unknown keywords (typos like "requried") fail at load time; type/tuple style hints stay quiet.
    strict: true,
    strictTypes: false,
    strictTuples: false,
  } as const;
  const ajv = draft2020 ? new Ajv2020.default(options) : new Ajv.default(options);
  addFormats.default(ajv);
  return ajv;
}

/** The key of one contract: `OrderPlaced.v1`. */
export function eventSchemaKey(type: string, version: number): string {
  return `${type}.v${version}`;
}

/**
 * Every event contract of one directory, compiled once. Draft 2020-12 schemas (declared by
 * `$schema`) compile with Ajv's 2020 dialect, everything else as draft-07; ajv-formats adds
 * `uuid`, `date-time` and the other formats.
 */
export class EventSchemaRegistry {
  readonly directory: string;
  readonly #validators = new Map<string, ValidateFunction>();

  /** Loads and compiles every `*.json` in `directory`; throws on a schema that does not compile. */
  constructor(directory: string = DEFAULT_EVENT_SCHEMA_DIR) {
    this.directory = directory;
    let files: string[];
    try {
      files = readdirSync(directory)
        .filter((f) => f.endsWith('.json'))
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') files = [];
      else throw error;
    }
    const ajvs = new Map<boolean, AjvInstance>();
    const ajvFor = (schema: { $schema?: unknown }) => {
      const is2020 = typeof schema.$schema === 'string' && DRAFT_2020.test(schema.$schema);
      let ajv = ajvs.get(is2020);
      if (!ajv) ajvs.set(is2020, (ajv = newAjv(is2020)));
      return ajv;
    };
    const events: { key: string; file: string; ref: string; ajv: AjvInstance }[] = [];
    for (const file of files) {
      let schema: Record<string, unknown>;
      try {
        schema = JSON.parse(readFileSync(path.join(directory, file), 'utf8'));
      } catch (error) {
        throw new Error(`event schema ${file}: ${(error as Error).message}`, { cause: error });
      }
      const ajv = ajvFor(schema);
      // Registered under its file name too, so a sibling can `$ref` "Money.json" without an $id.
      const ref = typeof schema.$id === 'string' ? schema.$id : file;
      try {
        ajv.addSchema(schema, ref);
      } catch (error) {
        throw new Error(`event schema ${file}: ${(error as Error).message}`, { cause: error });
      }
      const match = EVENT_SCHEMA_FILE.exec(file);
      if (match) {
        const declared = (schema.properties as { type?: { const?: unknown } } | undefined)?.type?.const;
        if (declared !== undefined && declared !== match[1]) {
          throw new Error(`event schema ${file}: properties.type.const is "${String(declared)}", not "${match[1]}"`);
        }
        events.push({ key: eventSchemaKey(match[1], Number(match[2])), file, ref, ajv });
      }
    }
    // Compiled only once every file is registered, so `$ref`s between them resolve in any order.
    for (const event of events) {
      let validator: ValidateFunction | undefined;
      try {
        validator = event.ajv.getSchema(event.ref);
      } catch (error) {
        throw new Error(`event schema ${event.file}: ${(error as Error).message}`, { cause: error });
      }
      if (!validator) throw new Error(`event schema ${event.file} did not compile`);
      this.#validators.set(event.key, validator);
    }
  }

  /** The contracts known, as `Type.vN`, sorted. */
  get keys(): string[] {
    return [...this.#validators.keys()].sort();
  }

  /** Whether a contract exists for this type and version. */
  has(type: string, version: number): boolean {
    return this.#validators.has(eventSchemaKey(type, version));
  }

  /**
   * Throws {@link EventValidationError} unless `event` is a valid instance of the contract its own
   * `type` and `version` name (an unknown type or version is an error too).
   */
  validate(event: unknown): asserts event is AnyEventEnvelope {
    if (typeof event !== 'object' || event === null || Array.isArray(event)) {
      throw new EventValidationError('event must be a JSON object');
    }
    const { type, version } = event as { type?: unknown; version?: unknown };
    if (typeof type !== 'string' || !Number.isInteger(version)) {
      throw new EventValidationError('event must have a string "type" and an integer "version"');
    }
    const validator = this.#validators.get(eventSchemaKey(type, version as number));
    if (!validator) {
      throw new EventValidationError(`no schema for event type ${type} version ${String(version)} in ${this.directory}`, type, version as number);
    }
    if (!validator(event)) {
      const errors = validator.errors ?? [];
      const details = errors.map(
        (e) =>
          `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`,
      );
      throw new EventValidationError(`${type} v${String(version)} is invalid: ${details.join('; ')}`, type, version as number, errors);
    }
  }
}

let defaultRegistry: EventSchemaRegistry | undefined;

/** The registry of `schema/events/`, loaded on first use and shared by the process. */
export function defaultEventSchemaRegistry(): EventSchemaRegistry {
  return (defaultRegistry ??= new EventSchemaRegistry());
}
