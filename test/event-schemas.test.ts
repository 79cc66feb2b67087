/**
 * The event contracts: every type of the ADR 0008 catalogue has a JSON Schema in schema/events/ and a
 * page in docs/events/; each schema compiles (draft 2020-12, strict), accepts its page's example and
 * refuses representative broken envelopes. The catalogue is read from the ADR itself, so a type added
 * there without a schema, or a data field that differs, fails here.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { AGGREGATE_ID_FIELDS } from '../scripts/event-types.ts';

// Both packages are CommonJS: Node hands over `module.exports` (the class / the plugin itself, which
// also carries a `default`), while TypeScript types the default import as the module; `.default`
// is right for both.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMA_DIR = path.join(ROOT, 'schema/events');
const DOCS_DIR = path.join(ROOT, 'docs/events');
const ORDER_STATUSES = ['PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'REJECTED', 'CANCELLED'];

interface CatalogueEntry {
  readonly topic: string;
  readonly type: string;
  readonly aggregateType: string;
  readonly dataFields: readonly string[];
}

/** The rows of the ADR's event catalogue table. */
function readCatalogue(): CatalogueEntry[] {
  const adr = readFileSync(path.join(ROOT, 'docs/adr/0008-orchestrated-saga.md'), 'utf8');
  const entries: CatalogueEntry[] = [];
  for (const line of adr.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    // | topic | type | aggregate | data | consumed by |
    if (cells.length < 6 || !/^[a-z]+\.events\.v1$/.test(cells[1])) continue;
    // The fields are the backticked part; item shapes in [...] and remarks after it are not fields.
    const data = (/`([^`]*)`/.exec(cells[4])?.[1] ?? '').replace(/\[[^\]]*\]/g, '');
    entries.push({
      topic: cells[1],
      type: cells[2],
      aggregateType: cells[3].split(' ')[0],
      dataFields: data
        .split(',')
        .map((field) => field.trim())
        .filter(Boolean),
    });
  }
  return entries;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** The first ```json block of a docs page, parsed. */
function firstJsonBlock(markdown: string): JsonObject {
  const match = /```json\n([\s\S]*?)\n```/.exec(markdown);
  assert.ok(match, 'the page has a ```json block');
  return JSON.parse(match[1]) as JsonObject;
}

const clone = <T extends Json>(value: T): T => structuredClone(value);

/** Every object in `value` (depth first) with its path, to find Money, items and the like. */
function* objects(value: Json, at = ''): Generator<[string, JsonObject]> {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield* objects(value[i], `${at}[${i}]`);
  } else if (value !== null && typeof value === 'object') {
    yield [at, value];
    for (const [key, child] of Object.entries(value)) yield* objects(child, `${at}.${key}`);
  }
}

/** Broken copies of a valid envelope, each of which its schema must refuse. */
function brokenVariants(example: JsonObject): [string, JsonObject][] {
  const variants: [string, JsonObject][] = [];
  const variant = (name: string, change: (envelope: JsonObject, data: JsonObject) => void) => {
    const copy = clone(example);
    change(copy, copy.data as JsonObject);
    variants.push([name, copy]);
  };
  for (const field of Object.keys(example))
    variant(`without envelope field ${field}`, (e) => {
      delete e[field];
    });
  for (const field of Object.keys(example.data as JsonObject))
    variant(`without data field ${field}`, (_, d) => {
      delete d[field];
    });
  variant('with an extra envelope field', (e) => {
    e.extra = 1;
  });
  variant('with an extra data field', (_, d) => {
    d.extra = 1;
  });
  variant('with another type', (e) => {
    e.type = e.type === 'OrderPlaced' ? 'OrderConfirmed' : 'OrderPlaced';
  });
  variant('with version 2', (e) => {
    e.version = 2;
  });
  variant('with another source', (e) => {
    e.source = 'elsewhere';
  });
  variant('with another aggregateType', (e) => {
    e.aggregateType = e.aggregateType === 'Order' ? 'Product' : 'Order';
  });
  variant('with an id that is not a UUID', (e) => {
    e.id = 'not-a-uuid';
  });
  variant('with an empty aggregateId', (e) => {
    e.aggregateId = '';
  });
  variant('with occurredAt that is not a date-time', (e) => {
    e.occurredAt = '22.11.2026 10:15';
  });
  variant('with a numeric causationId', (e) => {
    e.causationId = 42;
  });
  variant('with data that is not an object', (e) => {
    e.data = [];
  });

  const data = example.data as JsonObject;
  for (const idField of ['orderId', 'paymentId', 'shipmentId', 'refundId']) {
    if (idField in data)
      variant(`with ${idField} that is not a UUID`, (_, d) => {
        d[idField] = '12345';
      });
  }
  if ('customerId' in data)
    variant('with an empty customerId', (_, d) => {
      d.customerId = '';
    });
  if ('reason' in data)
    variant('with a reason over 500 characters', (_, d) => {
      d.reason = 'x'.repeat(501);
    });
  if ('deadlineAt' in data)
    variant('with deadlineAt that is not a date-time', (_, d) => {
      d.deadlineAt = 'tomorrow';
    });
  if ('previousStatus' in data)
    variant('with an unknown previousStatus', (_, d) => {
      d.previousStatus = 'LOST';
    });
  if ('status' in data)
    variant('with an unknown product status', (_, d) => {
      d.status = 'ARCHIVED';
    });
  if (Array.isArray(data.addresses) && data.addresses.length > 0) {
    variant('with more than 20 addresses', (_, d) => {
      d.addresses = Array.from({ length: 21 }, () => clone((d.addresses as JsonObject[])[0]));
    });
    variant('with an address in a country code that is not ISO 3166-1 alpha-2', (_, d) => {
      (d.addresses as JsonObject[])[0].country = 'DEU';
    });
  }
  for (const [key, value] of Object.entries(data)) {
    // A customer may have no address; every other list of an event has at least one entry.
    if (Array.isArray(value) && key !== 'addresses')
      variant(`with an empty ${key}`, (_, d) => {
        d[key] = [];
      });
  }
  const paths = [...objects(data)];
  const at = (copy: JsonObject, where: string): JsonObject => [...objects(copy.data as JsonObject)].find(([p]) => p === where)![1];
  for (const [where, object] of paths) {
    if ('amount' in object && 'currency' in object) {
      variant(`with a negative amount at data${where}`, (c) => {
        at(c, where).amount = -1;
      });
      variant(`with a fractional amount at data${where}`, (c) => {
        at(c, where).amount = 12.5;
      });
      variant(`with a lower-case currency at data${where}`, (c) => {
        at(c, where).currency = 'eur';
      });
      variant(`with Money without currency at data${where}`, (c) => {
        delete at(c, where).currency;
      });
    }
    for (const counter of ['quantity', 'requested']) {
      if (counter in object)
        variant(`with ${counter} 0 at data${where}`, (c) => {
          at(c, where)[counter] = 0;
        });
    }
    if ('sku' in object) {
      variant(`with a bad sku at data${where}`, (c) => {
        at(c, where).sku = 'no spaces/please';
      });
      variant(`with a sku of 65 characters at data${where}`, (c) => {
        at(c, where).sku = 'A'.repeat(65);
      });
    }
    if (where.includes('['))
      variant(`with an extra field at data${where}`, (c) => {
        at(c, where).extra = true;
      });
  }
  return variants;
}

const catalogue = readCatalogue();
const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats(ajv);

describe('event schemas', () => {
  test('the ADR catalogue lists the 23 event types, each once', () => {
    assert.equal(catalogue.length, 23);
    assert.equal(new Set(catalogue.map((entry) => entry.type)).size, 23);
  });

  test('schema/events holds exactly one v1 schema per catalogue type', () => {
    const files = readdirSync(SCHEMA_DIR)
      .filter((file) => file.endsWith('.json'))
      .sort();
    assert.deepEqual(files, catalogue.map((entry) => `${entry.type}.v1.json`).sort());
  });

  test('docs/events/README.md links every event page', () => {
    const readme = readFileSync(path.join(DOCS_DIR, 'README.md'), 'utf8');
    for (const { type } of catalogue) assert.ok(readme.includes(`](${type}.md)`), `README links ${type}.md`);
    assert.ok(readme.includes('```mermaid'), 'README has the saga diagram');
  });

  for (const entry of catalogue) {
    describe(entry.type, () => {
      const schemaPath = path.join(SCHEMA_DIR, `${entry.type}.v1.json`);
      const docPath = path.join(DOCS_DIR, `${entry.type}.md`);
      const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as JsonObject;
      const validate = ajv.compile(schema);
      const example = firstJsonBlock(readFileSync(docPath, 'utf8'));

      test('has the metadata of a draft 2020-12 schema', () => {
        assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
        assert.equal(schema.$id, `https://swiftcart.dev/events/${entry.type}.v1.json`);
        assert.equal(typeof schema.title, 'string');
        assert.equal(typeof schema.description, 'string');
      });

      test("describes the whole envelope, closed, with the ADR's type, source, aggregate and data fields", () => {
        const properties = schema.properties as Record<string, JsonObject>;
        assert.deepEqual(schema.required, [
          'id',
          'type',
          'version',
          'source',
          'aggregateType',
          'aggregateId',
          'occurredAt',
          'correlationId',
          'causationId',
          'data',
        ]);
        assert.equal(schema.additionalProperties, false);
        assert.equal(properties.type.const, entry.type);
        assert.equal(properties.version.const, 1);
        assert.equal(properties.source.const, entry.topic.split('.')[0]);
        assert.equal(properties.aggregateType.const, entry.aggregateType);
        assert.equal(properties.data.additionalProperties, false);
        assert.deepEqual(properties.data.required, entry.dataFields);
        assert.deepEqual(Object.keys(properties.data.properties as JsonObject), entry.dataFields);
        if (entry.type === 'OrderCancelled') {
          const data = properties.data.properties as Record<string, JsonObject>;
          assert.deepEqual(data.previousStatus.enum, ORDER_STATUSES);
        }
      });

      test('stands alone: every $ref points into its own $defs', () => {
        const refs = JSON.stringify(schema).match(/"\$ref":"[^"]*"/g) ?? [];
        for (const ref of refs) assert.match(ref, /^"\$ref":"#\/\$defs\/[A-Za-z]+"$/);
      });

      test(`accepts the example of docs/events/${entry.type}.md`, () => {
        assert.ok(existsSync(docPath));
        assert.ok(validate(example), JSON.stringify(validate.errors, null, 2));
        assert.equal(example.aggregateId, (example.data as JsonObject)[AGGREGATE_ID_FIELDS[entry.aggregateType]]);
        if (entry.aggregateType === 'Order') assert.equal(example.correlationId, (example.data as JsonObject).orderId);
      });

      test('accepts a causationId of null and of an event id', () => {
        assert.ok(validate({ ...example, causationId: null }));
        assert.ok(validate({ ...example, causationId: '0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b' }));
      });

      test('refuses broken envelopes', () => {
        const accepted = brokenVariants(example)
          .filter(([, broken]) => validate(broken))
          .map(([name]) => name);
        assert.deepEqual(accepted, [], 'every broken variant is refused');
      });
    });
  }

  test('the representative broken envelopes are refused for the reason they were broken', () => {
    const validate = ajv.getSchema('https://swiftcart.dev/events/OrderPlaced.v1.json')!;
    const example = firstJsonBlock(readFileSync(path.join(DOCS_DIR, 'OrderPlaced.md'), 'utf8'));
    const refuse = (
      change: (e: JsonObject & { data: JsonObject & { items: JsonObject[]; total: JsonObject } }) => void,
      keyword: string,
      instancePath: string,
    ) => {
      const copy = clone(example) as JsonObject & { data: JsonObject & { items: JsonObject[]; total: JsonObject } };
      change(copy);
      assert.equal(validate(copy), false);
      assert.ok(
        validate.errors!.some((error) => error.keyword === keyword && error.instancePath === instancePath),
        `${keyword} at ${instancePath}: ${JSON.stringify(validate.errors)}`,
      );
    };
    refuse(
      (e) => {
        delete (e.data as JsonObject).total;
      },
      'required',
      '/data',
    );
    refuse(
      (e) => {
        e.data.coupon = 'FREE';
      },
      'additionalProperties',
      '/data',
    );
    refuse(
      (e) => {
        e.data.total.amount = -1;
      },
      'minimum',
      '/data/total/amount',
    );
    refuse(
      (e) => {
        e.data.items[0].quantity = 0;
      },
      'minimum',
      '/data/items/0/quantity',
    );
    refuse(
      (e) => {
        e.type = 'OrderConfirmed';
      },
      'const',
      '/type',
    );
    refuse(
      (e) => {
        e.id = 'not-a-uuid';
      },
      'format',
      '/id',
    );
    refuse(
      (e) => {
        e.data.orderId = '01a202c0-80a0-7001-8eef';
      },
      'format',
      '/data/orderId',
    );
  });
});
