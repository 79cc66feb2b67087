/** A JSON Schema for a test-only event type, validating the whole envelope like schema/events/ does. */
export function envelopeSchema(options: {
  readonly type: string;
  readonly aggregateType: string;
  /** The `$schema` draft (tests cover both the 2020-12 and draft-07 registries). */
  readonly $schema?: string;
  /** The schema of `source`; any string by default. */
  readonly source?: Record<string, unknown>;
  /** The schema of `data`. */
  readonly data: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    $schema: options.$schema ?? 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    required: ['id', 'type', 'version', 'source', 'aggregateType', 'aggregateId', 'occurredAt', 'correlationId', 'causationId', 'data'],
    additionalProperties: false,
    properties: {
      id: { type: 'string', format: 'uuid' },
      type: { const: options.type },
      version: { const: 1 },
      source: options.source ?? { type: 'string' },
      aggregateType: { const: options.aggregateType },
      aggregateId: { type: 'string', minLength: 1 },
      occurredAt: { type: 'string', format: 'date-time' },
      correlationId: { type: 'string' },
      causationId: { type: ['string', 'null'] },
      data: options.data,
    },
  };
}
