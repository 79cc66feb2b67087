/**
 * The platform's one input guard: every string an operation carries — literals in the document
 * and variable values, nested input objects and lists included — is checked before anything runs,
 * so that a NUL byte, another control character, a lone UTF-16 surrogate or an oversized
 * identifier is a BAD_USER_INPUT (HTTP 400) and never reaches PostgreSQL, Redis, Kafka or JSON.
 *
 * Every subgraph applies it (Apollo plugin and graphql-ws `onSubscribe`, platform/src/service.ts
 * and ws.ts), and so does the gateway (gateway/src/gateway.ts and live-server.ts). It runs after
 * validation (the document's types are known) and before execution or query planning.
 */
import {
  BREAK,
  type DocumentNode,
  GraphQLError,
  type GraphQLInputObjectType,
  type GraphQLInputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValueNode,
  TypeInfo,
  getNamedType,
  getNullableType,
  isInputObjectType,
  isListType,
  typeFromAST,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import type { ApolloServerPlugin, BaseContext, GraphQLRequestListener } from '@apollo/server';
import { z } from 'zod';
import { integer, parseSettings } from './settings.ts';
import { ErrorCode } from './errors.ts';

/** How long strings may be. */
export interface InputLimits {
  /** Longest identifier (a value of type ID, or of an argument or field named like one); `INPUT_MAX_ID_LENGTH`. */
  readonly maxIdLength: number;
  /** Longest string of any other kind; `INPUT_MAX_STRING_LENGTH`. */
  readonly maxStringLength: number;
}

/**
 * Defaults of {@link InputLimits}: identifiers in SwiftCart are at most 100 characters (skus 64,
 * idempotency keys 100, UUIDs 36, cursors well under 200), and the longest documented text is a
 * product description of 5,000; both limits leave room above that.
 */
export const DEFAULT_INPUT_LIMITS: InputLimits = { maxIdLength: 256, maxStringLength: 10_000 };

/** `INPUT_MAX_*`: platform settings, read by every subgraph and the gateway. */
export const inputLimitSettings = z.object({
  INPUT_MAX_ID_LENGTH: integer({ default: DEFAULT_INPUT_LIMITS.maxIdLength, min: 1, max: 1_048_576 }).describe(
    'longest identifier (`ID`, `sku`, cursors, `...Id`, `...Key`) in any input, everywhere (`BAD_USER_INPUT`)',
  ),
  INPUT_MAX_STRING_LENGTH: integer({ default: DEFAULT_INPUT_LIMITS.maxStringLength, min: 1, max: 1_048_576 }).describe('longest other string in any input'),
});

/** Reads {@link InputLimits} ({@link inputLimitSettings}) from a configuration's variables. */
export function inputLimits(vars: Readonly<Record<string, string | undefined>>): InputLimits {
  const settings = parseSettings(inputLimitSettings, vars);
  return { maxIdLength: settings.INPUT_MAX_ID_LENGTH, maxStringLength: settings.INPUT_MAX_STRING_LENGTH };
}

/**
 * C0 control characters other than tab, line feed and carriage return, which free text (a
 * description, an address) may legitimately hold. NUL is what PostgreSQL refuses outright; the
 * others have no business in any SwiftCart value either.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;

/**
 * Names that mark an argument or input field as an identifier whatever its type: `id`, `sku`,
 * the cursors `after` / `before` / `cursor`, `key`, their plurals, and camel-case names ending in
 * `Id`, `ID`, `Sku`, `Key` or `Cursor` (`orderId`, `idempotencyKey`).
 */
const IDENTIFIER_NAME = /^(?:ids?|IDs?|skus?|after|before|cursors?|keys?)$|(?:Ids?|IDs?|Skus?|Keys?|Cursors?)$/;

/** Whether an argument, input field or variable named `name` holds an identifier. */
export function isIdentifierName(name: string): boolean {
  return IDENTIFIER_NAME.test(name);
}

function isIdentifierType(type: GraphQLInputType | undefined): boolean {
  return type !== undefined && getNamedType(type).name === 'ID';
}

function codePoint(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * What is wrong with one string value, as the end of a sentence ("contains ...", "is ..."), or
 * undefined when it is acceptable: too long for `maxLength`, a control character other than
 * tab, LF and CR, or a lone UTF-16 surrogate.
 */
export function stringProblem(value: string, maxLength: number): string | undefined {
  if (value.length > maxLength) return `is ${value.length} characters long, more than the ${maxLength} allowed`;
  const control = CONTROL_CHARACTER.exec(value);
  if (control) return `contains the control character ${codePoint(control[0].charCodeAt(0))}, which is not accepted`;
  if (!value.isWellFormed()) {
    for (let i = 0; i < value.length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0xdc00 && code <= 0xdfff) return `contains a lone UTF-16 surrogate (${codePoint(code)}), which is not valid Unicode`;
      if (code >= 0xd800 && code <= 0xdbff) {
        const next = value.charCodeAt(i + 1);
        if (!(next >= 0xdc00 && next <= 0xdfff)) return `contains a lone UTF-16 surrogate (${codePoint(code)}), which is not valid Unicode`;
        i++;
      }
    }
  }
  return undefined;
}

/** The refusal: BAD_USER_INPUT naming the argument or variable path in `extensions.field`. */
function refusal(kind: 'Argument' | 'Variable', field: string, problem: string): GraphQLError {
  return new GraphQLError(`${kind} "${field}" ${problem}`, { extensions: { code: ErrorCode.BadUserInput, field } });
}

/** What is known about one document once, whatever the request's variables. */
interface DocumentPlan {
  readonly schema: GraphQLSchema;
  /** The first bad literal in the document (default values of variables included). */
  readonly literalError: GraphQLError | null;
  /** Variables passed somewhere to an argument or input field named like an identifier. */
  readonly identifierVariables: ReadonlySet<string>;
  readonly operations: WeakMap<OperationDefinitionNode, readonly VariablePlan[]>;
}

/** One variable of an operation: its input type and whether its strings are identifiers. */
interface VariablePlan {
  readonly name: string;
  readonly type: GraphQLInputType | undefined;
  readonly identifier: boolean;
}

/** A value still to be looked at in a variable, and where it sits (the path is built only on error). */
interface Pending {
  readonly value: unknown;
  readonly type: GraphQLInputType | undefined;
  readonly identifier: boolean;
  readonly parent: Pending | undefined;
  readonly key: string | number;
}

const MAX_PATH_LENGTH = 200;

function pathOf(entry: Pending): string {
  const parts: string[] = [];
  for (let at: Pending | undefined = entry; at; at = at.parent) {
    parts.push(typeof at.key === 'number' ? `[${at.key}]` : at.parent ? `.${at.key}` : at.key);
  }
  const path = parts.reverse().join('');
  // Keys and nesting are the client's: keep the message small whatever they sent.
  return path.length > MAX_PATH_LENGTH ? `${path.slice(0, MAX_PATH_LENGTH)}…` : path;
}

/**
 * Checks operations against {@link InputLimits}. What depends only on the document (its literals,
 * which variables are identifiers) is worked out once per parsed document and kept beside it, so
 * a request costs one look at each string of its variables.
 */
export class InputGuard {
  readonly limits: InputLimits;
  readonly #plans = new WeakMap<DocumentNode, DocumentPlan>();
  readonly #fields = new WeakMap<GraphQLInputObjectType, ReadonlyMap<string, { readonly type: GraphQLInputType; readonly identifier: boolean }>>();

  constructor(limits: InputLimits = DEFAULT_INPUT_LIMITS) {
    this.limits = limits;
  }

  /**
   * The refusal for `operation` of `document` (validated against `schema`) with the raw
   * `variables`, or undefined when every string in it is acceptable. Never throws: variables of
   * any shape are walked without recursion, so even absurdly nested JSON is answered.
   */
  check(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Readonly<Record<string, unknown>> | null | undefined,
  ): GraphQLError | undefined {
    let plan = this.#plans.get(document);
    if (!plan || plan.schema !== schema) {
      plan = this.#plan(schema, document);
      this.#plans.set(document, plan);
    }
    if (plan.literalError) return plan.literalError;
    if (!variables || !operation.variableDefinitions?.length) return undefined;
    let definitions = plan.operations.get(operation);
    if (!definitions) {
      definitions = operation.variableDefinitions.map((definition) => {
        const name = definition.variable.name.value;
        const type = typeFromAST(schema, definition.type) as GraphQLInputType | undefined;
        return { name, type, identifier: isIdentifierType(type) || isIdentifierName(name) || plan!.identifierVariables.has(name) };
      });
      plan.operations.set(operation, definitions);
    }
    for (const definition of definitions) {
      const value = variables[definition.name];
      if (value === undefined || value === null) continue;
      const refused = this.#checkValue({ value, type: definition.type, identifier: definition.identifier, parent: undefined, key: `$${definition.name}` });
      if (refused) return refused;
    }
    return undefined;
  }

  /**
   * Walks one variable's value depth-first with an explicit stack. Strings are checked where they
   * are met; only containers are stacked, and a path is built only for a refusal.
   */
  #checkValue(root: Pending): GraphQLError | undefined {
    const { maxIdLength, maxStringLength } = this.limits;
    if (typeof root.value === 'string') {
      const problem = stringProblem(root.value, root.identifier ? maxIdLength : maxStringLength);
      return problem ? refusal('Variable', pathOf(root), problem) : undefined;
    }
    const stack: Pending[] = [root];
    while (stack.length > 0) {
      const entry = stack.pop()!;
      const { value, type } = entry;
      const nullable = type && getNullableType(type);
      if (Array.isArray(value)) {
        // A single value where a list is expected is coerced to a list of one: keep the type then.
        const itemType = nullable && isListType(nullable) ? (nullable.ofType as GraphQLInputType) : type;
        const maxLength = entry.identifier ? maxIdLength : maxStringLength;
        for (let i = 0; i < value.length; i++) {
          const item: unknown = value[i];
          if (typeof item === 'string') {
            const problem = stringProblem(item, maxLength);
            if (problem) return refusal('Variable', pathOf({ value: item, type: itemType, identifier: entry.identifier, parent: entry, key: i }), problem);
          } else if (item !== null && typeof item === 'object') {
            stack.push({ value: item, type: itemType, identifier: entry.identifier, parent: entry, key: i });
          }
        }
      } else if (value !== null && typeof value === 'object') {
        // Unknown fields (and custom scalars such as _Any) are still walked, without a type.
        const fields = nullable && isInputObjectType(nullable) ? this.#fieldsOf(nullable) : undefined;
        for (const key in value) {
          if (!Object.hasOwn(value, key)) continue;
          const item: unknown = (value as Record<string, unknown>)[key];
          if (typeof item !== 'string' && (item === null || typeof item !== 'object')) continue;
          const field = fields?.get(key);
          const identifier = field ? field.identifier : isIdentifierName(key);
          if (typeof item === 'string') {
            const problem = stringProblem(item, identifier ? maxIdLength : maxStringLength);
            if (problem) return refusal('Variable', pathOf({ value: item, type: field?.type, identifier, parent: entry, key }), problem);
          } else {
            stack.push({ value: item, type: field?.type, identifier, parent: entry, key });
          }
        }
      }
    }
    return undefined;
  }

  /** The fields of an input type with whether each holds identifiers, worked out once per type. */
  #fieldsOf(type: GraphQLInputObjectType): ReadonlyMap<string, { readonly type: GraphQLInputType; readonly identifier: boolean }> {
    let fields = this.#fields.get(type);
    if (!fields) {
      fields = new Map(
        Object.values(type.getFields()).map((f) => [f.name, { type: f.type, identifier: isIdentifierType(f.type) || isIdentifierName(f.name) }]),
      );
      this.#fields.set(type, fields);
    }
    return fields;
  }

  #plan(schema: GraphQLSchema, document: DocumentNode): DocumentPlan {
    const { maxIdLength, maxStringLength } = this.limits;
    const identifierVariables = new Set<string>();
    let literalError: GraphQLError | null = null;
    // Literals are as deep as the parser allowed, so plain recursion is safe here.
    const walk = (
      node: ValueNode,
      type: GraphQLInputType | undefined,
      identifier: boolean,
      path: string,
      kind: 'Argument' | 'Variable',
    ): GraphQLError | undefined => {
      switch (node.kind) {
        case 'StringValue': {
          const problem = stringProblem(node.value, identifier ? maxIdLength : maxStringLength);
          return problem ? refusal(kind, path, problem) : undefined;
        }
        case 'Variable':
          if (identifier) identifierVariables.add(node.name.value);
          return undefined;
        case 'ListValue': {
          const nullable = type && getNullableType(type);
          const itemType = nullable && isListType(nullable) ? (nullable.ofType as GraphQLInputType) : type;
          for (let i = 0; i < node.values.length; i++) {
            const refused = walk(node.values[i], itemType, identifier, `${path}[${i}]`, kind);
            if (refused) return refused;
          }
          return undefined;
        }
        case 'ObjectValue': {
          const nullable = type && getNullableType(type);
          const fields = nullable && isInputObjectType(nullable) ? nullable.getFields() : undefined;
          for (const field of node.fields) {
            const name = field.name.value;
            const fieldType = fields?.[name]?.type;
            const refused = walk(field.value, fieldType, isIdentifierType(fieldType) || isIdentifierName(name), `${path}.${name}`, kind);
            if (refused) return refused;
          }
          return undefined;
        }
        default:
          return undefined;
      }
    };
    const typeInfo = new TypeInfo(schema);
    visit(
      document,
      visitWithTypeInfo(typeInfo, {
        VariableDefinition(node) {
          if (node.defaultValue) {
            const name = node.variable.name.value;
            const type = typeFromAST(schema, node.type) as GraphQLInputType | undefined;
            const refused = walk(node.defaultValue, type, isIdentifierType(type) || isIdentifierName(name), `$${name}`, 'Variable');
            if (refused) {
              literalError = refused;
              return BREAK;
            }
          }
          return false;
        },
        Argument(node) {
          const name = node.name.value;
          const type = typeInfo.getArgument()?.type;
          const refused = walk(node.value, type, isIdentifierType(type) || isIdentifierName(name), name, 'Argument');
          if (refused) {
            literalError = refused;
            return BREAK;
          }
          return false;
        },
      }),
    );
    return { schema, literalError, identifierVariables, operations: new WeakMap() };
  }
}

/** `error` with HTTP status 400, which Apollo Server takes from `extensions.http` and then removes. */
function badRequest(error: GraphQLError): GraphQLError {
  return new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 400 } } });
}

/**
 * The guard as an Apollo Server plugin: `didResolveOperation` runs after parsing and validation
 * and before execution (and, at the gateway, before query planning); a refusal there is sent as
 * it is, with HTTP 400, and its documented code keeps it out of the error log.
 */
export function inputGuardPlugin<TContext extends BaseContext>(guard: InputGuard): ApolloServerPlugin<TContext> {
  const listener: GraphQLRequestListener<TContext> = {
    async didResolveOperation({ schema, document, operation, request }) {
      if (!operation) return;
      const refused = guard.check(schema, document, operation, request.variables);
      if (refused) throw badRequest(refused);
    },
  };
  return { requestDidStart: async () => listener };
}
