/**
 * The storefront operations (`schema/operations/*.graphql`) and the SDK's view of them: every
 * operation and fragment is named and documented, every generated document is an SDK method of the
 * right kind, and `graphql-codegen --check` notices a changed operation.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kind, type DocumentNode, type OperationDefinitionNode, buildSchema, concatAST, parse, validate } from 'graphql';
import { REPO_ROOT } from '@swiftcart/platform';
import { API_SCHEMA_FILE, apiSchemaOf } from '../../../scripts/api-schema.ts';
import { SUPERGRAPH_FILE } from '../../../scripts/compose.ts';
import * as generated from '../src/generated/operations.ts';
import { requestDocuments, subscriptionDocuments } from '../src/operations.ts';

const OPERATIONS_DIR = path.join(REPO_ROOT, 'schema', 'operations');
const GENERATED = 'clients/sdk/src/generated/operations.ts';
const CODEGEN = path.join(REPO_ROOT, 'node_modules', '.bin', 'graphql-codegen');

function operationOf(document: DocumentNode): OperationDefinitionNode {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  assert.equal(operations.length, 1);
  return operations[0];
}

const lowerFirst = (name: string) => name[0].toLowerCase() + name.slice(1);

/** The `generates` entry of codegen.yml for the SDK, as text (up to the next entry or the end). */
function sdkCodegenEntry(): string {
  const config = readFileSync(path.join(REPO_ROOT, 'codegen.yml'), 'utf8');
  const start = config.indexOf(`  ${GENERATED}:`);
  assert.ok(start > 0, `codegen.yml generates ${GENERATED}`);
  const rest = config.slice(start + 1);
  const next = rest.search(/\n {2}\S/);
  return next < 0 ? config.slice(start) : config.slice(start, start + 1 + next + 1);
}

/** Runs `graphql-codegen --check` for the SDK entry over a copy of the operations; returns the exit status. */
function checkCopy(change: (dir: string) => void): { status: number | null; output: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-sdk-codegen-'));
  try {
    const operations = path.join(dir, 'operations');
    mkdirSync(operations);
    cpSync(OPERATIONS_DIR, operations, { recursive: true });
    const output = path.join(dir, 'operations.ts');
    cpSync(path.join(REPO_ROOT, GENERATED), output);
    change(operations);
    const entry = sdkCodegenEntry()
      .replace(`  ${GENERATED}:`, `  ${output}:`)
      .replace('schema: schema/supergraph.graphql', `schema: ${path.join(REPO_ROOT, 'schema', 'supergraph.graphql')}`)
      .replace('documents: schema/operations/*.graphql', `documents: ${operations}/*.graphql`);
    assert.notEqual(entry.indexOf(operations), -1, 'the copied entry reads the copied operations');
    writeFileSync(path.join(dir, 'codegen.yml'), `overwrite: true\ngenerates:\n${entry}`);
    const result = spawnSync(process.execPath, [CODEGEN, '--config', path.join(dir, 'codegen.yml'), '--check'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('storefront operations', () => {
  it('every operation and fragment is named and has a leading # comment saying what it is for', () => {
    const files = readdirSync(OPERATIONS_DIR).filter((f) => f.endsWith('.graphql'));
    assert.deepEqual(files.sort(), [
      'analytics.graphql',
      'cart.graphql',
      'customer.graphql',
      'live.graphql',
      'notifications.graphql',
      'orders.graphql',
      'products.graphql',
    ]);
    const undocumented: string[] = [];
    let definitions = 0;
    for (const file of files) {
      const text = readFileSync(path.join(OPERATIONS_DIR, file), 'utf8');
      const lines = text.split('\n');
      for (const definition of parse(text).definitions) {
        definitions++;
        assert.ok(definition.kind === Kind.OPERATION_DEFINITION || definition.kind === Kind.FRAGMENT_DEFINITION, `${file}: only operations and fragments`);
        const name = definition.name?.value;
        assert.ok(name, `${file}: an operation without a name at line ${definition.loc?.startToken.line}`);
        const line = definition.loc!.startToken.line - 1;
        if (!lines[line - 1]?.startsWith('# ')) undocumented.push(`${file}: ${name}`);
      }
    }
    assert.deepEqual(undocumented, []);
    assert.equal(definitions, 35, '27 operations and 8 fragments');
  });

  it('every generated document is an SDK method of its kind, named after the operation', () => {
    const documents = Object.entries(generated).filter(([name]) => name.endsWith('Document')) as [string, DocumentNode][];
    const expected = { request: [] as string[], subscription: [] as string[] };
    for (const [exportName, document] of documents) {
      const operation = operationOf(document);
      assert.equal(`${operation.name!.value}Document`, exportName);
      expected[operation.operation === 'subscription' ? 'subscription' : 'request'].push(lowerFirst(operation.name!.value));
    }
    assert.deepEqual(Object.keys(requestDocuments).sort(), expected.request.sort());
    assert.deepEqual(Object.keys(subscriptionDocuments).sort(), expected.subscription.sort());
    for (const [method, document] of [...Object.entries(requestDocuments), ...Object.entries(subscriptionDocuments)]) {
      assert.equal(lowerFirst(operationOf(document as DocumentNode).name!.value), method);
    }
    assert.deepEqual(Object.keys(requestDocuments).sort(), [
      'addAddress',
      'addToCart',
      'browseProducts',
      'cancelOrder',
      'checkout',
      'clearCart',
      'me',
      'myCart',
      'myNotifications',
      'myOrders',
      'order',
      'orderNotifications',
      'placeOrder',
      'product',
      'removeAddress',
      'removeFromCart',
      'salesSummary',
      'searchProducts',
      'setDefaultAddress',
      'topProducts',
      'updateAddress',
      'updateCartItem',
      'updateMyProfile',
    ]);
    assert.deepEqual(Object.keys(subscriptionDocuments).sort(), ['cartUpdated', 'orderUpdated', 'salesUpdated', 'stockLevelChanged']);
  });

  it('graphql-codegen --check passes on the checked-in operations and fails on a changed one', () => {
    const fresh = checkCopy(() => undefined);
    assert.equal(fresh.status, 0, `the unchanged copy must be up to date:\n${fresh.output}`);
    const stale = checkCopy((dir) => {
      const file = path.join(dir, 'products.graphql');
      const text = readFileSync(file, 'utf8');
      assert.ok(text.includes('    description\n'), 'the Product query selects description');
      writeFileSync(file, text.replace('    description\n', '    description\n    createdAt\n'));
    });
    assert.notEqual(stale.status, 0, `codegen --check must fail when an operation changed:\n${stale.output}`);
    assert.match(stale.output, /stale files were detected/, 'it fails because the output is stale, not for another reason');
  });

  it('schema/api.graphqls is the API schema of the supergraph (what native client generators read), and follows it', () => {
    const current = readFileSync(API_SCHEMA_FILE, 'utf8');
    assert.equal(current, apiSchemaOf(), 'stale schema/api.graphqls: run `node scripts/api-schema.ts`');
    assert.doesNotMatch(current, /join__|link__|@join|@link/, 'no federation machinery in the API schema');
    const supergraph = readFileSync(SUPERGRAPH_FILE, 'utf8');
    const field = '  """Display name."""\n  name: String! @join__field(graph: PRODUCT)';
    assert.ok(supergraph.includes(field));
    const changed = supergraph.replace(field, `${field}\n\n  """Added."""\n  subtitle: String @join__field(graph: PRODUCT)`);
    assert.notEqual(apiSchemaOf(changed), current, 'a supergraph change shows in the API schema');
  });

  it('every operation validates against schema/api.graphqls, as Apollo Kotlin and Apollo iOS will check it', () => {
    const schema = buildSchema(readFileSync(API_SCHEMA_FILE, 'utf8'));
    const files = readdirSync(OPERATIONS_DIR).filter((f) => f.endsWith('.graphql'));
    const document = concatAST(files.map((f) => parse(readFileSync(path.join(OPERATIONS_DIR, f), 'utf8'))));
    assert.deepEqual(
      validate(schema, document).map((e) => e.message),
      [],
    );
    const broken = parse('query Broken { product(sku: "A") { sku nickname } }');
    assert.equal(validate(schema, broken).length, 1, 'validation does catch an unknown field');
  });
});
