/** The checked-in contracts and generated files are complete and current, and the code type-checks. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kind, parse, visit } from 'graphql';
import { REPO_ROOT, SERVICE_NAMES } from '@swiftcart/platform';
import { SUPERGRAPH_FILE, composeSupergraph } from '../scripts/compose.ts';
import { EVENT_TYPES_FILE, renderEventTypes } from '../scripts/event-types.ts';

const BIN = path.join(REPO_ROOT, 'node_modules', '.bin');

function run(command: string, args: string[], cwd = REPO_ROOT) {
  return spawnSync(process.execPath, [path.join(BIN, command), ...args], { cwd, encoding: 'utf8', timeout: 170_000 });
}

describe('contracts', () => {
  it('schema/supergraph.graphql is what `npm run compose` produces now', () => {
    assert.equal(readFileSync(SUPERGRAPH_FILE, 'utf8'), composeSupergraph(), 'stale supergraph: run `npm run compose`');
  });

  it('a changed subgraph SDL is detected as a stale supergraph', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-schema-'));
    try {
      cpSync(path.join(REPO_ROOT, 'schema'), dir, { recursive: true });
      const file = path.join(dir, 'product.graphql');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace('  "Display name."\n  name: String!', '  "Display name."\n  name: String!\n  "Added."\n  subtitle: String'),
      );
      assert.notEqual(composeSupergraph(dir), readFileSync(SUPERGRAPH_FILE, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`npm run compose -- --check` fails on a stale file and passes on a fresh one', () => {
    const ok = spawnSync(process.execPath, ['scripts/compose.ts', '--check'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-schema-'));
    try {
      cpSync(path.join(REPO_ROOT, 'schema'), dir, { recursive: true });
      const file = path.join(dir, 'inventory.graphql');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace(
          '  "Units physically in the warehouse."\n  onHand: Int!',
          '  "Units physically in the warehouse."\n  onHand: Int!\n  "Added."\n  incoming: Int',
        ),
      );
      const stale = spawnSync(process.execPath, ['scripts/compose.ts', '--check', '--schema-dir', dir], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(stale.status, 1, stale.stdout);
      assert.match(stale.stderr, /supergraph\.graphql is stale/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('platform/src/generated/events.ts is what `npm run generate:events` produces from schema/events now', async () => {
    assert.equal(readFileSync(EVENT_TYPES_FILE, 'utf8'), await renderEventTypes(), 'stale event types: run `npm run generate:events`');
  });

  it('a changed event contract is detected as stale event types, and a contract the generator cannot key is refused', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-events-'));
    try {
      cpSync(path.join(REPO_ROOT, 'schema', 'events'), dir, { recursive: true });
      const file = path.join(dir, 'ShipmentCreated.v1.json');
      const schema = JSON.parse(readFileSync(file, 'utf8'));
      schema.properties.data.properties.carrier = { type: 'string' };
      writeFileSync(file, JSON.stringify(schema));
      const changed = await renderEventTypes(dir);
      assert.notEqual(changed, readFileSync(EVENT_TYPES_FILE, 'utf8'));
      assert.match(changed, /export interface ShipmentCreatedData \{[^}]*readonly carrier\?: string;/);
      schema.properties.aggregateType.const = 'Parcel';
      writeFileSync(file, JSON.stringify(schema));
      await assert.rejects(renderEventTypes(dir), /no aggregate id field is known for aggregate type Parcel/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('generated resolver types are what `npm run codegen` produces now', () => {
    const result = run('graphql-codegen', ['--config', 'codegen.yml', '--check']);
    assert.equal(result.status, 0, `stale codegen output: run \`npm run codegen\`\n${result.stdout}\n${result.stderr}`);
  });

  it('a changed schema is detected as stale codegen output', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'swiftcart-codegen-'));
    try {
      const generated = path.join(dir, 'resolvers.ts');
      cpSync(path.join(REPO_ROOT, 'subgraphs/product/src/generated/resolvers.ts'), generated);
      const sdl = readFileSync(path.join(REPO_ROOT, 'schema/product.graphql'), 'utf8').replace(
        '  "Display name."\n  name: String!',
        '  "Display name."\n  name: String!\n  "Added."\n  subtitle: String',
      );
      writeFileSync(path.join(dir, 'product.graphql'), sdl);
      const config = readFileSync(path.join(REPO_ROOT, 'codegen.yml'), 'utf8');
      const common = config.slice(config.indexOf('config: &common'), config.indexOf('generates:'));
      writeFileSync(
        path.join(dir, 'codegen.yml'),
        `overwrite: true\n${common}generates:\n  ${generated}:\n    schema: ${path.join(dir, 'product.graphql')}\n    plugins:\n      - add:\n          content: '// Generated by graphql-codegen from schema/product.graphql: run \`npm run codegen\`, do not edit.'\n      - typescript\n      - typescript-resolvers\n    config:\n      <<: *common\n      contextType: ../context.ts#ProductContext\n      mappers:\n        Product: ../entities.ts#ProductRecord\n`,
      );
      // From the repository root, where graphql-codegen finds its plugins (from the temp dir it finds none and fails either way).
      const result = run('graphql-codegen', ['--config', path.join(dir, 'codegen.yml'), '--check']);
      assert.notEqual(result.status, 0, 'codegen --check must fail when the schema changed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every type, field, enum value and input field of every subgraph has a description', () => {
    const missing: string[] = [];
    for (const name of SERVICE_NAMES) {
      const document = parse(readFileSync(path.join(REPO_ROOT, 'schema', `${name}.graphql`), 'utf8'));
      const check = (node: { description?: unknown; name: { value: string } }, where: string) => {
        if (!node.description) missing.push(`${name}: ${where}`);
      };
      visit(document, {
        ObjectTypeDefinition(node) {
          check(node, node.name.value);
          for (const field of node.fields ?? []) check(field, `${node.name.value}.${field.name.value}`);
        },
        InputObjectTypeDefinition(node) {
          check(node, node.name.value);
          for (const field of node.fields ?? []) check(field, `${node.name.value}.${field.name.value}`);
        },
        EnumTypeDefinition(node) {
          check(node, node.name.value);
          for (const value of node.values ?? []) check(value, `${node.name.value}.${value.name.value}`);
        },
        ScalarTypeDefinition(node) {
          check(node, node.name.value);
        },
      });
      assert.ok(
        document.definitions.some((d) => d.kind === Kind.SCHEMA_EXTENSION),
        `${name} links Federation 2`,
      );
    }
    assert.deepEqual(missing, []);
  });

  it('the whole repository type-checks under strict (`tsc --noEmit`)', () => {
    const result = run('tsc', ['--noEmit', '-p', 'tsconfig.json']);
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
  });
});
