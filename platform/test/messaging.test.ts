/** The event envelope, UUID v7 and the schema registry: pure logic, no infrastructure. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventSchemaRegistry, EventValidationError, createEvent, dlqTopic, eventHeaders, eventsTopic, isUuid, uuidv7, uuidv7Time } from '../src/index.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A whole-envelope schema, as schema/events/ holds them, in either draft. */
function envelopeSchema(type: string, draft: '2020-12' | '07', data: object): object {
  return {
    $schema: draft === '2020-12' ? 'https://json-schema.org/draft/2020-12/schema' : 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    required: ['id', 'type', 'version', 'source', 'aggregateType', 'aggregateId', 'occurredAt', 'correlationId', 'causationId', 'data'],
    additionalProperties: false,
    properties: {
      id: { type: 'string', format: 'uuid' },
      type: { const: type },
      version: { const: 1 },
      source: { type: 'string' },
      aggregateType: { type: 'string' },
      aggregateId: { type: 'string', minLength: 1 },
      occurredAt: { type: 'string', format: 'date-time' },
      correlationId: { type: 'string' },
      causationId: { type: ['string', 'null'] },
      data,
    },
  };
}

describe('uuidv7', () => {
  it('has the RFC 9562 layout: version 7, variant 10, the current millisecond', () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    assert.match(id, UUID_V7);
    assert.ok(isUuid(id));
    assert.ok(uuidv7Time(id) >= before && uuidv7Time(id) <= after, 'the first 48 bits are the Unix time in ms');
  });

  it('is strictly increasing and unique, also within one millisecond', () => {
    const ids = Array.from({ length: 20_000 }, () => uuidv7());
    assert.equal(new Set(ids).size, ids.length);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  });

  it("carries an injected clock's time", () => {
    const now = Date.parse('2026-12-06T10:00:00.000Z');
    const id = uuidv7(now);
    assert.equal(uuidv7Time(id), now);
    assert.match(id, UUID_V7);
  });
});

describe('envelope', () => {
  it('createEvent fills id, version, time, correlation and causation', () => {
    const event = createEvent({ type: 'OrderPlaced', source: 'order', aggregateType: 'Order', aggregateId: 'o-1', data: { n: 1 } });
    assert.match(event.id, UUID_V7);
    assert.equal(event.version, 1);
    assert.equal(event.correlationId, 'o-1');
    assert.equal(event.causationId, null);
    assert.ok(!Number.isNaN(Date.parse(event.occurredAt)) && event.occurredAt.endsWith('Z'));
    const caused = createEvent({
      type: 'StockReserved',
      source: 'inventory',
      aggregateType: 'Order',
      aggregateId: 'o-1',
      cause: event,
      data: {},
      occurredAt: new Date(0),
    });
    assert.equal(caused.causationId, event.id);
    assert.equal(caused.correlationId, event.correlationId);
    assert.equal(caused.occurredAt, '1970-01-01T00:00:00.000Z');
    const explicit = createEvent({
      type: 'X',
      version: 2,
      source: 's',
      aggregateType: 'A',
      aggregateId: 'a',
      correlationId: 'c',
      causationId: null,
      cause: event,
      data: null,
    });
    assert.deepEqual([explicit.version, explicit.correlationId, explicit.causationId], [2, 'c', null]);
  });

  it('names topics and headers', () => {
    assert.equal(eventsTopic('order'), 'order.events.v1');
    assert.equal(dlqTopic('order.events.v1'), 'order.events.v1.dlq');
    const headers = eventHeaders({ id: 'i', type: 'T' });
    assert.equal(headers.id, 'i');
    assert.equal(headers.type, 'T');
    assert.equal(headers.traceparent, undefined, 'no OpenTelemetry SDK, no active span: no traceparent');
  });
});

describe('EventSchemaRegistry', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'swiftcart-schemas-'));
    writeFileSync(
      path.join(dir, 'Money.json'),
      JSON.stringify({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        $id: 'https://swiftcart.test/events/Money.json',
        type: 'object',
        required: ['amount', 'currency'],
        additionalProperties: false,
        properties: { amount: { type: 'integer' }, currency: { const: 'EUR' } },
      }),
    );
    writeFileSync(
      path.join(dir, 'ThingPaid.v1.json'),
      JSON.stringify({
        ...envelopeSchema('ThingPaid', '2020-12', {
          type: 'object',
          required: ['total'],
          additionalProperties: false,
          properties: { total: { $ref: 'https://swiftcart.test/events/Money.json' } },
        }),
        $id: 'https://swiftcart.test/events/ThingPaid.v1.json',
      }),
    );
    writeFileSync(
      path.join(dir, 'ThingMade.v1.json'),
      JSON.stringify(
        envelopeSchema('ThingMade', '07', {
          type: 'object',
          required: ['n'],
          properties: { n: { type: 'integer', minimum: 0 } },
        }),
      ),
    );
    writeFileSync(path.join(dir, 'notes.txt'), 'not a schema');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const paid = (data: unknown) => createEvent({ type: 'ThingPaid', source: 'payment', aggregateType: 'Thing', aggregateId: 't-1', data });

  it('loads both drafts and shared schemas, and accepts valid envelopes', () => {
    const registry: EventSchemaRegistry = new EventSchemaRegistry(dir);
    assert.deepEqual(registry.keys, ['ThingMade.v1', 'ThingPaid.v1']);
    assert.ok(registry.has('ThingMade', 1));
    assert.ok(!registry.has('ThingMade', 2));
    registry.validate(paid({ total: { amount: 100, currency: 'EUR' } }));
    registry.validate(createEvent({ type: 'ThingMade', source: 'x', aggregateType: 'Thing', aggregateId: 't', data: { n: 0 } }));
  });

  it('refuses an unknown type or version', () => {
    const registry: EventSchemaRegistry = new EventSchemaRegistry(dir);
    assert.throws(
      () => registry.validate(createEvent({ type: 'Nope', source: 'x', aggregateType: 'A', aggregateId: 'a', data: {} })),
      (error: unknown) => error instanceof EventValidationError && /no schema for event type Nope version 1/.test(error.message),
    );
    assert.throws(
      () => registry.validate(createEvent({ type: 'ThingMade', version: 2, source: 'x', aggregateType: 'A', aggregateId: 'a', data: { n: 1 } })),
      EventValidationError,
    );
    assert.throws(() => registry.validate('a string'), /must be a JSON object/);
    assert.throws(() => registry.validate({ type: 'ThingMade' }), /integer "version"/);
  });

  it('refuses bad data and a broken envelope, with every problem in the message', () => {
    const registry: EventSchemaRegistry = new EventSchemaRegistry(dir);
    assert.throws(
      () => registry.validate(paid({ total: { amount: 1.5, currency: 'USD' } })),
      (error: unknown) => {
        assert.ok(error instanceof EventValidationError);
        assert.match(error.message, /ThingPaid v1 is invalid/);
        assert.match(error.message, /\/data\/total\/amount must be integer/);
        assert.match(error.message, /\/data\/total\/currency must be equal to constant/);
        assert.equal(error.eventType, 'ThingPaid');
        assert.ok(error.errors.length >= 2);
        return true;
      },
    );
    const broken = { ...paid({ total: { amount: 1, currency: 'EUR' } }), id: 'not-a-uuid', occurredAt: 'yesterday', extra: true };
    assert.throws(
      () => registry.validate(broken),
      (error: unknown) => {
        assert.ok(error instanceof EventValidationError);
        assert.match(error.message, /\/id must match format "uuid"/);
        assert.match(error.message, /\/occurredAt must match format "date-time"/);
        assert.match(error.message, /must NOT have additional properties \(extra\)/);
        return true;
      },
    );
  });

  it('fails to load a schema with an unknown keyword or a type that does not match its file name', () => {
    const bad = mkdtempSync(path.join(tmpdir(), 'swiftcart-schemas-bad-'));
    try {
      writeFileSync(path.join(bad, 'Typo.v1.json'), JSON.stringify({ type: 'object', requried: ['id'] }));
      assert.throws(() => new EventSchemaRegistry(bad), /Typo\.v1\.json.*unknown keyword/);
      rmSync(path.join(bad, 'Typo.v1.json'));
      writeFileSync(path.join(bad, 'Named.v1.json'), JSON.stringify(envelopeSchema('Other', '2020-12', {})));
      assert.throws(() => new EventSchemaRegistry(bad), /not "Named"/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('a missing directory is an empty registry', () => {
    const registry: EventSchemaRegistry = new EventSchemaRegistry(path.join(dir, 'absent'));
    assert.deepEqual(registry.keys, []);
  });

  it("loads the repository's own contracts", () => {
    const registry: EventSchemaRegistry = new EventSchemaRegistry();
    for (const key of registry.keys) assert.match(key, /^[A-Z][A-Za-z]+\.v\d+$/);
  });
});
