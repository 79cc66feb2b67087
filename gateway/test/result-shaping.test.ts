/**
 * The gateway's result shaping gives what Apollo's `computeResponse` gives, value for value: the
 * same data (keys in the same order), the same errors with the same paths, the same exceptions.
 * Both run on the same operations and on generated subgraph data that includes what shaping
 * exists to catch: nulls in non-null positions, unknown and foreign `__typename`s, invalid leaf
 * values, missing fields, fragments on interfaces and unions, `@skip`/`@include` by literal and by
 * variable, aliases (`__proto__` among them: answers are plain objects) and repeated fields.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type FieldSelection, type Operation, type Schema, Supergraph, buildSchema, operationFromDocument } from '@apollo/federation-internals';
import {
  type GraphQLCompositeType,
  type GraphQLSchema,
  type SelectionSetNode,
  GraphQLEnumType,
  GraphQLList,
  GraphQLNonNull,
  GraphQLScalarType,
  Kind,
  getNamedType,
  isAbstractType,
  isCompositeType,
  parse,
  separateOperations,
  typeFromAST,
} from 'graphql';
import { REPO_ROOT } from '@swiftcart/platform';
import { FEDERATION_DISTINCT_QUERY, FEDERATION_QUERY, composeFederationSupergraph } from '../../bench/federation/subgraphs.ts';
import { type ComputeResponseArgs, apolloComputeResponse, computeResponse } from '../src/result-shaping.ts';
import { random } from './random.ts';

const SHAPES_SDL = `
  directive @custom on FIELD
  scalar JSON
  enum Colour { RED GREEN }
  interface Node { id: ID! }
  interface Named { name: String }
  type Book implements Node & Named { id: ID! name: String pages: Int! colour: Colour tags: [String!] }
  type Film implements Node & Named { id: ID! name: String minutes: Float related: [Node] }
  type Person implements Node { id: ID! name: String! friends: [Person!]! best: Person data: JSON }
  union Thing = Book | Film | Person
  type Query {
    node(id: ID!): Node
    things: [Thing]!
    people: [Person!]
    named: [Named!]!
    count: Int!
  }
`;

const SHAPES_QUERY = `
  query Shapes($withPages: Boolean!, $skipFilm: Boolean = false) {
    count
    first: node(id: "1") { __typename id ... on Book { pages @include(if: $withPages) name } ...FilmBits }
    things {
      __typename
      t: __typename
      ... on Book { id pages colour tags }
      ... on Film @skip(if: $skipFilm) { minutes related { id ... on Person { name } } }
      ... on Person { id name friends { id name best { id } } data }
      ... on Named { name }
    }
    people { id name @skip(if: true) friends { id } friends { name } best { id name __proto__: name } }
    named { name ... on Node { id } }
  }
  fragment FilmBits on Film { minutes name }
`;

/** Subgraph data for `selectionSet` at a value of `type`, right or wrong as `rand` decides. */
function generate(
  schema: GraphQLSchema,
  type: GraphQLCompositeType,
  selectionSet: SelectionSetNode,
  fragments: Record<string, SelectionSetNode>,
  rand: () => number,
  depth = 0,
): unknown {
  const runtime = isAbstractType(type) ? schema.getPossibleTypes(type) : [type];
  const roll = rand();
  let typename: string | undefined = runtime[Math.floor(rand() * runtime.length)].name;
  if (roll < 0.03) typename = 'Unknown';
  else if (roll < 0.05) typename = 'Query';
  else if (roll < 0.2 && !isAbstractType(type)) typename = undefined;
  const value: Record<string, unknown> = typename === undefined ? {} : { __typename: typename };
  const objectType = (typename && schema.getType(typename)) || type;
  const fill = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) fill(fragments[selection.name.value]);
      else if (selection.kind === Kind.INLINE_FRAGMENT) fill(selection.selectionSet);
      else {
        const key = selection.alias?.value ?? selection.name.value;
        if (selection.name.value === '__typename' || rand() < 0.04) continue;
        const fields = 'getFields' in objectType ? objectType.getFields() : {};
        const field = fields[selection.name.value] ?? (isCompositeType(type) && 'getFields' in type ? type.getFields()[selection.name.value] : undefined);
        if (!field) continue;
        // Defined, not assigned: an alias `__proto__` is a field like any other in a subgraph's JSON.
        Object.defineProperty(value, key, {
          value: leafOrObject(schema, field.type, selection.selectionSet, fragments, rand, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
  };
  fill(selectionSet);
  return value;
}

function leafOrObject(
  schema: GraphQLSchema,
  type: Parameters<typeof getNamedType>[0],
  selectionSet: SelectionSetNode | undefined,
  fragments: Record<string, SelectionSetNode>,
  rand: () => number,
  depth: number,
): unknown {
  if (rand() < 0.06) return null;
  if (type instanceof GraphQLNonNull) return leafOrObject(schema, type.ofType, selectionSet, fragments, rand, depth);
  if (type instanceof GraphQLList) {
    if (depth > 6) return [];
    return Array.from({ length: Math.floor(rand() * 4) }, () => leafOrObject(schema, type.ofType, selectionSet, fragments, rand, depth + 1));
  }
  if (isCompositeType(type)) return depth > 8 ? null : generate(schema, type, selectionSet!, fragments, rand, depth);
  const wrong = rand() < 0.05;
  if (type instanceof GraphQLEnumType) return wrong ? 'PURPLE' : type.getValues()[Math.floor(rand() * type.getValues().length)].value;
  const scalar = (type as GraphQLScalarType).name;
  if (scalar === 'Int') return wrong ? 1.5 : Math.floor(rand() * 100);
  if (scalar === 'Float') return wrong ? 'x' : rand() * 10;
  if (scalar === 'Boolean') return wrong ? 'yes' : rand() < 0.5;
  if (scalar === 'ID') return wrong ? true : String(Math.floor(rand() * 100));
  if (scalar === 'String') return wrong ? 3 : `s${Math.floor(rand() * 100)}`;
  return { any: rand() };
}

/** What a shaping gave, comparable: its data, its errors as JSON, or the exception it threw. */
function outcome(shape: (args: ComputeResponseArgs) => { data: unknown; errors: readonly { toJSON?: () => unknown }[] }, args: ComputeResponseArgs) {
  try {
    const { data, errors } = shape(args);
    return { data: JSON.stringify(data), errors: errors.map((e) => JSON.stringify(e.toJSON?.() ?? e)) };
  } catch (error) {
    return { threw: (error as Error).message };
  }
}

interface Case {
  readonly name: string;
  readonly schema: Schema;
  readonly query: string;
  readonly variables: readonly Record<string, unknown>[];
}

function casesOf(name: string, schema: Schema, text: string, variables: readonly Record<string, unknown>[] = [{}]): Case[] {
  return Object.entries(separateOperations(parse(text))).map(([operationName, document]) => ({
    name: `${name} ${operationName}`,
    schema,
    query: JSON.stringify(document),
    variables,
  }));
}

describe('result shaping', () => {
  const shapes = buildSchema(SHAPES_SDL);
  const federation = Supergraph.build(
    composeFederationSupergraph({ accounts: 'http://a', inventory: 'http://i', products: 'http://p', reviews: 'http://r' }),
  ).apiSchema();
  const ours = Supergraph.build(readFileSync(path.join(REPO_ROOT, 'schema', 'supergraph.graphql'), 'utf8')).apiSchema();
  const directory = path.join(REPO_ROOT, 'schema', 'operations');
  // What the SDK and the storefront send; subscriptions are shaped by the live engine, per event, the same way.
  const operations = readdirSync(directory)
    .filter((file) => file.endsWith('.graphql') && file !== 'live.graphql')
    .map((file) => readFileSync(path.join(directory, file), 'utf8'))
    .join('\n');
  const cases: Case[] = [
    ...casesOf('shapes', shapes, SHAPES_QUERY, [{ withPages: true }, { withPages: false, skipFilm: true }, { withPages: 'no' }]),
    ...casesOf('federation', federation, FEDERATION_QUERY),
    ...casesOf('federation', federation, FEDERATION_DISTINCT_QUERY, [{ shop: 's1' }]),
    ...casesOf('ours', ours, operations),
  ];

  for (const testCase of cases) {
    it(`gives Apollo's answer, errors and exceptions: ${testCase.name}`, () => {
      const document = JSON.parse(testCase.query);
      const graphqlSchema = testCase.schema.toGraphQLJSSchema();
      const operation: Operation = operationFromDocument(testCase.schema, document);
      const definition = document.definitions.find((d: { kind: string }) => d.kind === Kind.OPERATION_DEFINITION);
      const fragments: Record<string, SelectionSetNode> = Object.fromEntries(
        document.definitions
          .filter((d: { kind: string }) => d.kind === Kind.FRAGMENT_DEFINITION)
          .map((d: { name: { value: string }; selectionSet: SelectionSetNode }) => [d.name.value, d.selectionSet]),
      );
      assert.ok(typeFromAST, 'graphql-js is loaded');
      let compared = 0;
      let withErrors = 0;
      for (const variables of testCase.variables) {
        for (let seed = 1; seed <= 150; seed++) {
          const rand = random(seed);
          const input = generate(graphqlSchema, graphqlSchema.getQueryType()!, definition.selectionSet, fragments, rand) as Record<string, unknown>;
          const args: ComputeResponseArgs = {
            operation,
            variables,
            input,
            introspectionHandling: (selection: FieldSelection) => `introspected ${selection.element.responseName()}`,
          };
          const expected = outcome(apolloComputeResponse as never, args);
          assert.deepEqual(outcome(computeResponse as never, args), expected, `${testCase.name}, variables ${JSON.stringify(variables)}, seed ${seed}`);
          compared++;
          if ((expected.errors?.length ?? 0) > 0) withErrors++;
        }
      }
      assert.ok(compared >= 150);
      // The generated data exercises shaping's error paths, not only the happy one.
      assert.ok(withErrors > 10, `${withErrors} of ${compared} inputs gave errors`);
    });
  }

  it('shapes an empty or absent input as Apollo does', () => {
    const operation = operationFromDocument(shapes, parse('{ count }'));
    for (const input of [null, undefined]) {
      const args = { operation, input, introspectionHandling: () => null } as ComputeResponseArgs;
      assert.deepEqual(computeResponse(args), apolloComputeResponse(args));
    }
  });
});
