/**
 * The gateway's query plan execution gives what Apollo's `executeQueryPlan` gives: the same data
 * (keys in the same order), the same errors with the same paths and extensions, the same
 * exceptions. Both run the same plans against the same subgraph answers:
 *
 * - the public benchmark's four subgraphs, executed in this process from their resolvers, on its
 *   query and on the distinct-shop variant (real entity fetches, each representation many times);
 * - generated answers for every operation of `schema/operations/`, the benchmark's queries and a
 *   supergraph of unions, compound and nested keys, `@requires` and `@include`, with faults: null
 *   and missing fields, null entities, errors at entity paths, failed fetches, answers without
 *   `_entities` or with the wrong number of them.
 *
 * Ours sends each distinct representation once (as Apollo Router does); a generated answer
 * depends on the representation, not on its position, as a subgraph's does. The one message that
 * differs by design, "Expected data._entities to contain N elements", is compared without its N.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { composeServices } from '@apollo/composition';
import { type Schema, Supergraph, operationFromDocument } from '@apollo/federation-internals';
import { type GraphQLDataSource, type ServiceMap, buildOperationContext } from '@apollo/gateway';
import { type QueryPlan, QueryPlanner } from '@apollo/query-planner';
import { buildSubgraphSchema } from '@apollo/subgraph';
import {
  type DocumentNode,
  type GraphQLCompositeType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  GraphQLEnumType,
  GraphQLList,
  GraphQLNonNull,
  type GraphQLOutputType,
  type GraphQLScalarType,
  Kind,
  execute,
  isAbstractType,
  isCompositeType,
  parse,
  separateOperations,
} from 'graphql';
import { REPO_ROOT } from '@swiftcart/platform';
import { FEDERATION_DISTINCT_QUERY, FEDERATION_QUERY, FEDERATION_SUBGRAPHS, composeFederationSupergraph, shops } from '../../bench/federation/subgraphs.ts';
import { apolloExecuteQueryPlan, executeQueryPlan } from '../src/plan-execution.ts';
import { random, seedOf } from './random.ts';

type Data = Record<string, unknown>;
type Execute = typeof executeQueryPlan;

interface Graph {
  readonly apiSchema: Schema;
  readonly apiGraphQL: GraphQLSchema;
  readonly supergraphSchema: GraphQLSchema;
  readonly planner: QueryPlanner;
}

function graphOf(sdl: string): Graph {
  const supergraph = Supergraph.build(sdl);
  const apiSchema = supergraph.apiSchema();
  return {
    apiSchema,
    apiGraphQL: apiSchema.toGraphQLJSSchema(),
    supergraphSchema: supergraph.schema.toGraphQLJSSchema(),
    planner: new QueryPlanner(supergraph),
  };
}

/** What an execution gave, comparable. */
interface Outcome {
  readonly data?: string;
  readonly errors?: string[];
  readonly extensions?: string;
  readonly nonFtv1ErrorPaths?: string;
  readonly threw?: string;
}

/** The representations each execution sent, for the figures the tests assert on. */
interface Sent {
  representations: number;
  fetches: number;
}

const normalise = (message: string) => message.replace(/to contain \d+ elements/, 'to contain N elements');

async function outcomeOf(
  run: Execute,
  graph: Graph,
  plan: QueryPlan,
  document: DocumentNode,
  operationName: string | undefined,
  variables: Data,
  serviceMap: ServiceMap,
): Promise<Outcome> {
  const operationContext = buildOperationContext({ schema: graph.apiGraphQL, operationDocument: document, operationName });
  const requestContext = { request: { query: 'unused', variables, operationName }, context: {}, metrics: {} as Data, logger: console };
  try {
    const result = await run(plan, serviceMap, requestContext as never, operationContext as never, graph.supergraphSchema, graph.apiSchema);
    return {
      data: JSON.stringify(result.data),
      errors: result.errors?.map((error) => JSON.stringify({ message: normalise(error.message), path: error.path, extensions: error.extensions })),
      extensions: JSON.stringify(result.extensions),
      nonFtv1ErrorPaths: JSON.stringify(requestContext.metrics.nonFtv1ErrorPaths),
    };
  } catch (error) {
    return { threw: normalise((error as Error).message) };
  }
}

/** Data sources that count what they are sent and answer through `answer`, as a subgraph's JSON. */
function serviceMapOf(names: readonly string[], sent: Sent, answer: (name: string, query: string, variables: Data) => Promise<unknown>): ServiceMap {
  const map: ServiceMap = {};
  for (const name of names) {
    map[name] = {
      async process({ request }) {
        const variables = (request.variables ?? {}) as Data;
        sent.fetches++;
        sent.representations += (variables.representations as unknown[] | undefined)?.length ?? 0;
        return JSON.parse(JSON.stringify(await answer(name, request.query!, variables)));
      },
    } satisfies GraphQLDataSource;
  }
  return map;
}

// --- Generated subgraph answers -----------------------------------------------------------------

const FAULTS_SDL = {
  shelf: `
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable"])
    type Query { things: [Thing] shelf(id: ID!): Shelf }
    union Thing = Book | Film
    type Shelf { id: ID! books: [Book!]! }
    type Book @key(fields: "id") { id: ID! title: String }
    type Film @key(fields: "id kind { code }") { id: ID! kind: Kind! size: Size @shareable }
    type Kind @shareable { code: String! }
    type Size @shareable { w: Int h: Int }
  `,
  details: `
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@shareable", "@external", "@requires"])
    type Book @key(fields: "id") { id: ID! pages: Int! related: [Book] }
    type Film @key(fields: "id kind { code }") { id: ID! kind: Kind! size: Size @external area: Int @requires(fields: "size { w h }") }
    type Kind @shareable { code: String! }
    type Size @shareable { w: Int h: Int }
  `,
};

const FAULTS_QUERY = `
  query Faults($withPages: Boolean!) {
    things {
      __typename
      ... on Book { id title pages @include(if: $withPages) related { id title pages } }
      ... on Film { id kind { code } area }
    }
    shelf(id: "1") { id books { id title pages } }
  }
`;

/** A generated value of `type` for `selectionSet`, mostly right: a few nulls and missing fields. */
function generateValue(schema: GraphQLSchema, type: GraphQLOutputType, selectionSet: SelectionSetNode | undefined, rand: () => number, depth: number): unknown {
  if (type instanceof GraphQLNonNull) return rand() < 0.02 ? null : generateValue(schema, type.ofType, selectionSet, rand, depth);
  if (rand() < 0.04) return null;
  if (type instanceof GraphQLList) {
    const length = depth > 5 ? 0 : Math.floor(rand() * 4);
    return Array.from({ length }, () => generateValue(schema, type.ofType, selectionSet, rand, depth + 1));
  }
  if (isCompositeType(type)) return generateObject(schema, type, selectionSet!, rand, depth + 1);
  if (type instanceof GraphQLEnumType) return type.getValues()[Math.floor(rand() * type.getValues().length)].value;
  switch ((type as GraphQLScalarType).name) {
    case 'Int':
      return Math.floor(rand() * 100);
    case 'Float':
      return Math.round(rand() * 1000) / 10;
    case 'Boolean':
      return rand() < 0.5;
    // A small pool of ids, so that entities repeat, as they do in real answers.
    case 'ID':
      return String(Math.floor(rand() * 3));
    case 'String':
      return `s${Math.floor(rand() * 3)}`;
    default:
      return { any: Math.floor(rand() * 3) };
  }
}

function generateObject(
  schema: GraphQLSchema,
  type: GraphQLCompositeType,
  selectionSet: SelectionSetNode,
  rand: () => number,
  depth: number,
  typename?: string,
): Data {
  const runtime =
    typename ??
    (isAbstractType(type) ? schema.getPossibleTypes(type) : [type])[Math.floor(rand() * (isAbstractType(type) ? schema.getPossibleTypes(type).length : 1))]
      .name;
  const objectType = schema.getType(runtime) as GraphQLCompositeType;
  const value: Data = {};
  const fill = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition?.name.value;
        if (
          !condition ||
          condition === runtime ||
          (isAbstractType(schema.getType(condition)!) && schema.isSubType(schema.getType(condition) as never, objectType as never))
        )
          fill(selection.selectionSet);
        continue;
      }
      if (selection.kind !== Kind.FIELD) continue;
      const key = selection.alias?.value ?? selection.name.value;
      if (selection.name.value === '__typename') {
        value[key] = runtime;
        continue;
      }
      if (rand() < 0.03) continue;
      const field = 'getFields' in objectType ? objectType.getFields()[selection.name.value] : undefined;
      if (field) value[key] = generateValue(schema, field.type, selection.selectionSet, rand, depth);
    }
  };
  fill(selectionSet);
  return value;
}

/**
 * A subgraph's answer to `query`, from the supergraph's types: a function of the seed and what
 * was asked (each representation on its own), with faults as the seed decides.
 */
function generatedAnswer(schema: GraphQLSchema, seed: number, name: string, query: string, variables: Data): unknown {
  const document = parse(query);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  const representations = variables.representations as Data[] | undefined;
  const { representations: _, ...others } = variables;
  const distinct = representations ? [...new Set(representations.map((r) => JSON.stringify(r)))].sort() : [];
  const request = random(seedOf(`${seed} ${name} ${query} ${JSON.stringify(others)} ${distinct.join()}`));
  const fault = request();
  if (fault < 0.03) throw new Error(`${name} is unreachable`);
  if (fault < 0.05) return { data: null, errors: [{ message: `${name} failed`, extensions: { code: 'INTERNAL_SERVER_ERROR' } }] };
  if (!representations) return { data: generateObject(schema, schema.getQueryType()!, operation.selectionSet, request, 0, schema.getQueryType()!.name) };
  if (fault < 0.07) return { data: {} };
  const entitiesField = operation.selectionSet.selections[0];
  assert.ok(entitiesField.kind === Kind.FIELD && entitiesField.name.value === '_entities');
  const errors: Data[] = [];
  const entities = representations.map((representation, index) => {
    const rand = random(seedOf(`${seed} ${name} ${query} ${JSON.stringify(representation)}`));
    const roll = rand();
    if (roll < 0.04) return null;
    const typename = representation.__typename as string;
    const entity = generateObject(schema, schema.getType(typename) as GraphQLCompositeType, entitiesField.selectionSet!, rand, 1, typename);
    if (roll < 0.25) {
      const field = Object.keys(entity).find((key) => key !== '__typename') ?? 'id';
      entity[field] = null;
      errors.push({ message: `${typename}.${field} failed`, path: ['_entities', index, field], extensions: { code: 'FIELD_FAILED' } });
    }
    // A subgraph need not echo `__typename`; Apollo copies it from the entity then.
    if (roll > 0.8) delete entity.__typename;
    return entity;
  });
  if (fault < 0.09) entities.pop();
  return errors.length ? { data: { _entities: entities }, errors } : { data: { _entities: entities } };
}

interface Case {
  readonly name: string;
  readonly graph: Graph;
  readonly subgraphs: readonly string[];
  readonly document: DocumentNode;
  readonly operationName: string | undefined;
  readonly variables: readonly Data[];
}

function casesOf(name: string, graph: Graph, subgraphs: readonly string[], text: string, variables: readonly Data[] = [{}]): Case[] {
  return Object.entries(separateOperations(parse(text)))
    .filter(([, document]) => (document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode).operation !== 'subscription')
    .map(([operationName, document]) => ({ name: `${name} ${operationName}`, graph, subgraphs, document, operationName, variables }));
}

function subgraphNames(sdl: string): string[] {
  return [...sdl.matchAll(/@join__graph\(name: "([^"]+)"/g)].map((match) => match[1]);
}

describe('query plan execution', () => {
  const federationSdl = composeFederationSupergraph({ accounts: 'http://a', inventory: 'http://i', products: 'http://p', reviews: 'http://r' });
  const federation = graphOf(federationSdl);

  it("gives Apollo's answers on the public benchmark's subgraphs, sending each representation once", async () => {
    const schemas = new Map(FEDERATION_SUBGRAPHS.map((s) => [s.name as string, buildSubgraphSchema([{ typeDefs: s.typeDefs, resolvers: s.resolvers }])]));
    const answer = async (name: string, query: string, variables: Data) =>
      execute({ schema: schemas.get(name)!, document: parse(query), variableValues: variables });
    const runs: [string, Data][] = [[FEDERATION_QUERY, {}], ...shops(3).map((shop): [string, Data] => [FEDERATION_DISTINCT_QUERY, { shop }])];
    for (const [query, variables] of runs) {
      const document = parse(query);
      const plan = federation.planner.buildQueryPlan(operationFromDocument(federation.apiSchema, document));
      const apolloSent: Sent = { representations: 0, fetches: 0 };
      const oursSent: Sent = { representations: 0, fetches: 0 };
      const expected = await outcomeOf(
        apolloExecuteQueryPlan,
        federation,
        plan,
        document,
        undefined,
        variables,
        serviceMapOf([...schemas.keys()], apolloSent, answer),
      );
      const actual = await outcomeOf(executeQueryPlan, federation, plan, document, undefined, variables, serviceMapOf([...schemas.keys()], oursSent, answer));
      assert.deepEqual(actual, expected, JSON.stringify(variables));
      assert.equal(expected.errors, undefined, 'the subgraphs answer without errors');
      assert.ok((expected.data?.length ?? 0) > 10_000, 'a full answer');
      assert.equal(oursSent.fetches, apolloSent.fetches);
      // In the public query an entity fetch holds each representation many times (17 on average).
      assert.ok(
        oursSent.representations * 5 < apolloSent.representations,
        `ours sent ${oursSent.representations} representations, Apollo ${apolloSent.representations}`,
      );
    }
  });

  const composed = composeServices(Object.entries(FAULTS_SDL).map(([name, sdl]) => ({ name, url: `http://${name}`, typeDefs: parse(sdl) })));
  assert.ok(composed.supergraphSdl, composed.errors?.map((e) => e.message).join('\n'));
  const oursSdl = readFileSync(path.join(REPO_ROOT, 'schema', 'supergraph.graphql'), 'utf8');
  const directory = path.join(REPO_ROOT, 'schema', 'operations');
  const operations = readdirSync(directory)
    .filter((file) => file.endsWith('.graphql'))
    .map((file) => readFileSync(path.join(directory, file), 'utf8'))
    .join('\n');
  const faults = graphOf(composed.supergraphSdl);
  const ours = graphOf(oursSdl);
  const cases: Case[] = [
    ...casesOf('faults', faults, Object.keys(FAULTS_SDL), FAULTS_QUERY, [{ withPages: true }, { withPages: false }]),
    ...casesOf('federation', federation, subgraphNames(federationSdl), FEDERATION_QUERY),
    ...casesOf('federation', federation, subgraphNames(federationSdl), FEDERATION_DISTINCT_QUERY, [{ shop: 's1' }]),
    ...casesOf('ours', ours, subgraphNames(oursSdl), operations),
  ];

  for (const testCase of cases) {
    it(`gives Apollo's answer, errors and exceptions on generated subgraph answers: ${testCase.name}`, async () => {
      const { graph, document, operationName } = testCase;
      const plan = graph.planner.buildQueryPlan(operationFromDocument(graph.apiSchema, document, { operationName }));
      let compared = 0;
      let withErrors = 0;
      const apolloSent: Sent = { representations: 0, fetches: 0 };
      const oursSent: Sent = { representations: 0, fetches: 0 };
      for (const variables of testCase.variables) {
        for (let seed = 1; seed <= 60; seed++) {
          const answer = async (name: string, query: string, sent: Data) => generatedAnswer(graph.supergraphSchema, seed, name, query, sent);
          const expected = await outcomeOf(
            apolloExecuteQueryPlan,
            graph,
            plan,
            document,
            operationName,
            variables,
            serviceMapOf(testCase.subgraphs, apolloSent, answer),
          );
          const actual = await outcomeOf(executeQueryPlan, graph, plan, document, operationName, variables, serviceMapOf(testCase.subgraphs, oursSent, answer));
          assert.deepEqual(actual, expected, `${testCase.name}, variables ${JSON.stringify(variables)}, seed ${seed}`);
          compared++;
          if (expected.errors?.length || expected.threw) withErrors++;
        }
      }
      assert.equal(oursSent.fetches, apolloSent.fetches);
      assert.ok(oursSent.representations <= apolloSent.representations);
      // The generated answers exercise the error paths, not only the happy one.
      if (apolloSent.fetches > compared) assert.ok(withErrors > 3, `${withErrors} of ${compared} executions gave errors`);
    });
  }
});
