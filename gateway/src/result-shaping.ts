/**
 * @apollo/gateway's result shaping (`computeResponse` in its `resultShaping.js`), the pass that
 * turns the merged subgraph data into the answer the operation asked for, doing the same work with
 * less of it per value. Under load it was a sixth of the gateway's CPU (issue 16's profile):
 * Apollo's version looks up `@skip`/`@include`, the response name, the field's type kind and, for
 * fragments, the type condition again for every object of every list, and returns a fresh object
 * for every value. This one does those lookups once per selection of an operation, caches type
 * conditions by `__typename`, and returns values without wrapping them.
 *
 * The answers, errors and exceptions are Apollo's, value for value: the algorithm is the same,
 * only hoisted, and gateway/test/result-shaping.test.ts runs both on the same inputs. It replaces
 * the module's export in place ({@link installResultShaping}), since `executeQueryPlan` reads it
 * from the module at every call and is not an extension point. ADR 0026 records why.
 */
import { createRequire } from 'node:module';
import {
  ERRORS,
  type FieldSelection,
  type FragmentElement,
  type NamedType,
  type Operation,
  type Schema,
  type SelectionSet,
  type Type,
  Variable,
  assert,
  isCompositeType,
  isListType,
  isNonNullType,
  isObjectType,
  isSubtype,
  isValidLeafValue,
  typenameFieldName,
} from '@apollo/federation-internals';
import type { GraphQLError } from 'graphql';

/** What Apollo's `computeResponse` takes. */
export interface ComputeResponseArgs {
  readonly operation: Operation;
  readonly variables?: Record<string, unknown>;
  readonly input: Record<string, unknown> | null | undefined;
  readonly introspectionHandling: (selection: FieldSelection) => unknown;
}

/** What it gives. */
export interface ComputeResponseResult {
  readonly data: Record<string, unknown> | null | undefined;
  readonly errors: GraphQLError[];
}

/** A `@skip` or `@include` condition: a literal, or a variable read per request. */
interface Condition {
  readonly directive: unknown;
  readonly value: boolean | Variable;
}

interface CompiledField {
  readonly kind: 'field';
  readonly skip: Condition | undefined;
  readonly include: Condition | undefined;
  readonly selection: FieldSelection;
  readonly responseName: string;
  /** An alias `__proto__`: read and written as the object's own property (answers are plain objects). */
  readonly protoKey: boolean;
  readonly introspection: boolean;
  readonly typename: boolean;
  readonly type: Type;
  readonly selectionSet: SelectionSet | undefined;
}

interface CompiledFragment {
  readonly kind: 'fragment';
  readonly skip: Condition | undefined;
  readonly include: Condition | undefined;
  readonly typeCondition: Type | undefined;
  readonly selectionSet: SelectionSet;
  /** Whether the type condition applies, by `__typename` (a string) or, for objects without one, by parent type (an object). */
  readonly applies: Map<string | Type, boolean>;
}

type Compiled = CompiledField | CompiledFragment;

interface Shaping {
  readonly schema: Schema;
  readonly variables: Record<string, unknown>;
  readonly errors: GraphQLError[];
  readonly introspectionHandling: (selection: FieldSelection) => unknown;
  /** The operation's selection sets, compiled on first use. */
  readonly compiled: Map<SelectionSet, readonly Compiled[]>;
  /** `schema.type(name)` by name. */
  readonly types: Map<string, NamedType | undefined>;
}

/** What is compiled for an operation, kept as long as the operation (plan-execution.ts keeps one per parsed operation). */
interface Compilation {
  readonly compiled: Map<SelectionSet, readonly Compiled[]>;
  readonly types: Map<string, NamedType | undefined>;
}

const compilations = new WeakMap<Operation, Compilation>();

function compilationOf(operation: Operation): Compilation {
  let compilation = compilations.get(operation);
  if (!compilation) compilations.set(operation, (compilation = { compiled: new Map(), types: new Map() }));
  return compilation;
}

const NULL_BUBBLE_UP = 1;
const OK = 0;

/** The flags of the value {@link updateOutputValue} returned last (Apollo returns them in an object per value). */
let lastInvalid = false;
let lastHasErrors = false;

function conditionOf(element: FieldSelection['element'] | FragmentElement, directive: ReturnType<Schema['skipDirective']>): Condition | undefined {
  const applied = element.appliedDirectivesOf(directive)[0];
  if (!applied) return undefined;
  return { directive: applied, value: applied.arguments().if as boolean | Variable };
}

function holds(condition: Condition, variables: Record<string, unknown>): boolean {
  if (condition.value instanceof Variable) {
    const value = variables[condition.value.name];
    assert(value !== undefined && typeof value === 'boolean', () => `Unexpected value ${value} for variable ${condition.value} of ${condition.directive}`);
    return value;
  }
  return condition.value;
}

function compile(selectionSet: SelectionSet, parameters: Shaping): readonly Compiled[] {
  let compiled = parameters.compiled.get(selectionSet);
  if (compiled) return compiled;
  const schema = parameters.schema;
  compiled = selectionSet.selections().map((selection): Compiled => {
    const element = selection.element;
    const skip = conditionOf(element, schema.skipDirective());
    const include = conditionOf(element, schema.includeDirective());
    if (selection.kind === 'FieldSelection') {
      const field = selection.element;
      return {
        kind: 'field',
        skip,
        include,
        selection,
        responseName: field.responseName(),
        protoKey: field.responseName() === '__proto__',
        introspection: field.definition.isSchemaIntrospectionField(),
        typename: field.name === typenameFieldName,
        type: field.definition.type!,
        selectionSet: selection.selectionSet,
      };
    }
    return {
      kind: 'fragment',
      skip,
      include,
      typeCondition: (element as FragmentElement).typeCondition,
      selectionSet: selection.selectionSet,
      applies: new Map(),
    };
  });
  parameters.compiled.set(selectionSet, compiled);
  return compiled;
}

function typeNamed(parameters: Shaping, name: string): NamedType | undefined {
  if (parameters.types.has(name)) return parameters.types.get(name);
  const type = parameters.schema.type(name);
  parameters.types.set(name, type);
  return type;
}

const hasOwn = Object.prototype.hasOwnProperty;

function ownValue(object: Record<string, unknown>, key: string): unknown {
  return hasOwn.call(object, key) ? object[key] : undefined;
}

/**
 * Sets a field of the answer. Answers are plain objects, not Apollo's `Object.create(null)`: V8
 * keeps those in dictionary mode, several times the memory per object and off JSON.stringify's
 * fast path. Only an alias `__proto__` then needs defining rather than assigning.
 */
function set(output: Record<string, unknown>, field: CompiledField, value: unknown): void {
  if (field.protoKey) Object.defineProperty(output, field.responseName, { value, writable: true, enumerable: true, configurable: true });
  else output[field.responseName] = value;
}

function applySelectionSet(
  input: Record<string, unknown>,
  selectionSet: SelectionSet,
  output: Record<string, unknown>,
  parameters: Shaping,
  path: (string | number)[],
  parentType: Type,
): number {
  for (const selection of compile(selectionSet, parameters)) {
    if ((selection.skip && holds(selection.skip, parameters.variables)) || (selection.include && !holds(selection.include, parameters.variables))) continue;
    if (selection.kind === 'field') {
      const responseName = selection.responseName;
      const outputValue = selection.protoKey ? ownValue(output, responseName) : output[responseName];
      if (selection.introspection) {
        if (outputValue === undefined) set(output, selection, parameters.introspectionHandling(selection.selection));
        continue;
      }
      let inputValue = (hasOwn.call(input, responseName) ? input[responseName] : undefined) ?? null;
      if (selection.typename) {
        if (outputValue === undefined) {
          if (inputValue === null && responseName !== typenameFieldName) inputValue = input[typenameFieldName] ?? null;
          const type = inputValue !== null && typeof inputValue === 'string' ? (typeNamed(parameters, inputValue) ?? parentType) : parentType;
          if (!isObjectType(type)) return NULL_BUBBLE_UP;
          set(output, selection, type.name);
        }
        continue;
      }
      path.push(responseName);
      set(output, selection, updateOutputValue(outputValue, selection.type, inputValue, selection.selectionSet, path, parameters, parentType));
      path.pop();
      if (lastInvalid) return NULL_BUBBLE_UP;
    } else {
      const typename = input[typenameFieldName];
      assert(!typename || typeof typename === 'string', () => `Got unexpected value for __typename: ${typename}`);
      if (applies(selection, typename as string | undefined, parentType, parameters)) {
        const result = applySelectionSet(input, selection.selectionSet, output, parameters, path, selection.typeCondition ?? parentType);
        if (result === NULL_BUBBLE_UP) return NULL_BUBBLE_UP;
      }
    }
  }
  return OK;
}

/** Apollo's `typeConditionApplies`, remembered per fragment by `__typename` (or parent type). */
function applies(fragment: CompiledFragment, typename: string | undefined, parentType: Type, parameters: Shaping): boolean {
  const condition = fragment.typeCondition;
  if (!condition) return true;
  const key = typename || parentType;
  let result = fragment.applies.get(key);
  if (result === undefined) {
    if (typename) {
      const type = typeNamed(parameters, typename);
      result = !!type && isSubtype(condition, type);
    } else {
      result = isSubtype(condition, parentType);
    }
    fragment.applies.set(key, result);
  }
  return result;
}

function pathLastElementDescription(path: readonly (string | number)[], currentType: Type, parentType: Type): string {
  const element = path[path.length - 1];
  assert(element !== undefined, 'Should not have been called on an empty path');
  return typeof element === 'string' ? `field ${parentType}.${element}` : `array element of type ${currentType} at index ${element}`;
}

/** Apollo's `updateOutputValue`; its `isInvalid` and `hasErrors` are left in {@link lastInvalid} and {@link lastHasErrors}. */
function updateOutputValue(
  outputValue: unknown,
  type: Type,
  inputValue: unknown,
  selectionSet: SelectionSet | undefined,
  path: (string | number)[],
  parameters: Shaping,
  parentType: Type,
): unknown {
  assert(inputValue !== undefined, 'Should not pass undefined for `inputValue` to this method');
  lastInvalid = false;
  lastHasErrors = false;
  if (outputValue === null || (outputValue !== undefined && !selectionSet)) return outputValue;
  if (isNonNullType(type)) {
    const updated = updateOutputValue(outputValue, type.ofType, inputValue, selectionSet, path, parameters, parentType);
    if (updated === null) {
      if (!lastHasErrors) {
        parameters.errors.push(
          ERRORS.INVALID_GRAPHQL.err(`Cannot return null for non-nullable ${pathLastElementDescription(path, type.ofType, parentType)}.`, {
            path: Array.from(path),
          }),
        );
      }
      lastInvalid = true;
      lastHasErrors = true;
      return updated;
    }
    lastInvalid = false;
    lastHasErrors = false;
    return updated;
  }
  if (inputValue === null) return null;
  if (isListType(type)) {
    assert(Array.isArray(inputValue), () => `Invalid non-list value ${inputValue} returned by subgraph for list type ${type}`);
    assert(outputValue === undefined || Array.isArray(outputValue), () => `Invalid non-list value ${outputValue} returned by subgraph for list type ${type}`);
    const outputList = outputValue as unknown[] | undefined;
    assert(
      outputList === undefined || inputValue.length === outputList.length,
      () => `[${inputValue}].length (${inputValue.length}) !== [${outputList}].length (${outputList!.length})`,
    );
    let shouldNullify = false;
    let hasErrors = false;
    const updated = new Array<unknown>(inputValue.length);
    for (let index = 0; index < inputValue.length; index++) {
      path.push(index);
      updated[index] = updateOutputValue(outputList?.[index], type.ofType, inputValue[index], selectionSet, path, parameters, parentType);
      path.pop();
      shouldNullify ||= lastInvalid;
      hasErrors ||= lastHasErrors;
    }
    lastInvalid = false;
    lastHasErrors = hasErrors;
    return shouldNullify ? null : updated;
  }
  if (isCompositeType(type)) {
    assert(selectionSet, () => `Invalid empty selection set for composite type ${type}`);
    assert(typeof inputValue === 'object', () => `Invalid non-object value ${inputValue} returned by subgraph for composite type ${type}`);
    assert(
      outputValue === undefined || typeof outputValue === 'object',
      () => `Invalid non-object value ${inputValue} returned by subgraph for composite type ${type}`,
    );
    const record = inputValue as Record<string, unknown>;
    const inputTypename = record[typenameFieldName];
    assert(inputTypename === undefined || typeof inputTypename === 'string', () => `Invalid non-string value ${inputTypename} for __typename at ${path}`);
    let objectType: Type = type;
    if (inputTypename) {
      const typenameType = typeNamed(parameters, inputTypename);
      if (!typenameType || !isCompositeType(typenameType)) {
        parameters.errors.push(
          ERRORS.INVALID_GRAPHQL.err(`Invalid __typename found for object at ${pathLastElementDescription(path, type, parentType)}.`, {
            path: Array.from(path),
          }),
        );
        lastInvalid = false;
        lastHasErrors = true;
        return null;
      }
      objectType = typenameType;
    }
    const outputObject = outputValue === undefined ? {} : (outputValue as Record<string, unknown>);
    const hasErrors = applySelectionSet(record, selectionSet, outputObject, parameters, path, objectType) === NULL_BUBBLE_UP;
    lastInvalid = false;
    lastHasErrors = hasErrors;
    return hasErrors ? null : outputObject;
  }
  assert(outputValue === undefined, () => `Excepted output to be undefined but got ${type} for type ${type}`);
  const valid = isValidLeafValue(parameters.schema, inputValue, type as Parameters<typeof isValidLeafValue>[2]);
  if (!valid) {
    parameters.errors.push(
      ERRORS.INVALID_GRAPHQL.err(`Invalid value found for ${pathLastElementDescription(path, type, parentType)}.`, { path: Array.from(path) }),
    );
  }
  lastInvalid = false;
  lastHasErrors = !valid;
  return valid ? inputValue : null;
}

/** The same function as Apollo's `computeResponse`, with selections compiled once per operation. */
export function computeResponse({ operation, variables, input, introspectionHandling }: ComputeResponseArgs): ComputeResponseResult {
  if (!input) return { data: input, errors: [] };
  const schema = operation.schema();
  const { compiled, types } = compilationOf(operation);
  const parameters: Shaping = {
    schema,
    variables: { __proto__: null, ...operation.collectDefaultedVariableValues(), ...variables } as Record<string, unknown>,
    errors: [],
    introspectionHandling,
    compiled,
    types,
  };
  const data: Record<string, unknown> = {};
  const result = applySelectionSet(input, operation.selectionSet, data, parameters, [], schema.schemaDefinition.rootType(operation.rootKind)!);
  return { data: result === NULL_BUBBLE_UP ? null : data, errors: parameters.errors };
}

/** Apollo's module, as `executeQueryPlan` requires it. */
const apolloResultShaping = createRequire(import.meta.url)('@apollo/gateway/dist/resultShaping.js') as {
  computeResponse: (args: ComputeResponseArgs) => ComputeResponseResult;
};

/** Apollo's own `computeResponse`, for the parity test. */
export const apolloComputeResponse = apolloResultShaping.computeResponse;

/** Makes @apollo/gateway's query plan execution shape results with {@link computeResponse}. */
export function installResultShaping(): void {
  apolloResultShaping.computeResponse = computeResponse;
}
