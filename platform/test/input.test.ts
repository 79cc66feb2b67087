import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildSchema, getOperationAST, parse, type GraphQLError } from 'graphql';
import { ConfigError } from '../src/config.ts';
import { DEFAULT_INPUT_LIMITS, InputGuard, inputLimits, isIdentifierName, stringProblem } from '../src/input.ts';

const schema = buildSchema(`
  scalar _Any
  input Address { name: String!, line1: String!, line2: String }
  input Item { sku: ID!, quantity: Int! }
  input Order { idempotencyKey: ID!, items: [Item!]!, shippingAddress: Address!, paymentMethod: String! }
  type Query {
    product(sku: ID!): String
    products(first: Int, after: String, search: String): [String]
    orders(customerRef: String): [String]
    _entities(representations: [_Any!]!): [String]
  }
  type Mutation { placeOrder(input: Order!): String }
`);

const guard = new InputGuard({ maxIdLength: 16, maxStringLength: 64 });

function check(query: string, variables?: Record<string, unknown>, g = guard): GraphQLError | undefined {
  const document = parse(query);
  return g.check(schema, document, getOperationAST(document)!, variables);
}

function assertRefused(error: GraphQLError | undefined, field: string, pattern: RegExp): void {
  assert.ok(error, `expected a refusal on ${field}`);
  assert.equal(error.extensions.code, 'BAD_USER_INPUT');
  assert.equal(error.extensions.field, field);
  assert.match(error.message, pattern);
  assert.ok(error.message.includes(`"${field}"`), error.message);
}

const ADDRESS = { name: 'Jörg Müller', line1: 'Hauptstraße 1', line2: 'c/o 🛒 Laden' };
const ORDER = { idempotencyKey: 'k-1', items: [{ sku: 'SKU-1', quantity: 1 }], shippingAddress: ADDRESS, paymentMethod: 'tok_visa' };
const PLACE = 'mutation($input: Order!) { placeOrder(input: $input) }';

describe('stringProblem', () => {
  it('accepts ordinary text: non-ASCII, emoji as surrogate pairs, tab, LF and CR', () => {
    for (const ok of ['', 'SKU-0001', 'Hauptstraße 5, 80331 München', '日本語', '🛒🎉 family: 👨‍👩‍👧', 'a\tb\nc\r\nd']) {
      assert.equal(stringProblem(ok, 100), undefined, JSON.stringify(ok));
    }
  });

  it('refuses NUL and the other C0 control characters, naming the code point', () => {
    assert.match(stringProblem('SKU\u0000', 100)!, /U\+0000/);
    for (const code of [0x01, 0x07, 0x08, 0x0b, 0x0c, 0x0e, 0x1b, 0x1f]) {
      const problem = stringProblem(`a${String.fromCharCode(code)}b`, 100);
      assert.match(problem!, new RegExp(`control character U\\+${code.toString(16).toUpperCase().padStart(4, '0')}`));
    }
  });

  it('refuses lone surrogates, leading or trailing, anywhere in the string', () => {
    for (const bad of ['\ud800', 'a\ud800', '\ud800a', '\udc00', 'x\udfffy', '🛒\ud83d', '\ud83d\ud83d\ude00'.slice(0, 2)]) {
      assert.match(stringProblem(bad, 100)!, /lone UTF-16 surrogate/, JSON.stringify(bad));
    }
    assert.match(stringProblem('ok\udc00', 100)!, /U\+DC00/);
  });

  it('refuses strings over the maximum length and accepts them at it', () => {
    assert.equal(stringProblem('x'.repeat(10), 10), undefined);
    assert.match(stringProblem('x'.repeat(11), 10)!, /11 characters long, more than the 10 allowed/);
  });
});

describe('isIdentifierName', () => {
  it('knows ids, skus, keys and cursors, and nothing else', () => {
    for (const name of ['id', 'ids', 'sku', 'skus', 'after', 'before', 'cursor', 'key', 'orderId', 'productIDs', 'idempotencyKey', 'parentSku', 'endCursor']) {
      assert.equal(isIdentifierName(name), true, name);
    }
    for (const name of ['name', 'description', 'isValid', 'monkeys', 'line1', 'search', 'reason', 'paymentMethod', 'identity']) {
      assert.equal(isIdentifierName(name), false, name);
    }
  });
});

describe('InputGuard', () => {
  it('passes ordinary operations, inline and with variables, non-ASCII included', () => {
    assert.equal(check('{ product(sku: "SKU-1") }'), undefined);
    assert.equal(check('query($s: ID!) { product(sku: $s) }', { s: 'SKU-1' }), undefined);
    assert.equal(check(PLACE, { input: ORDER }), undefined);
    assert.equal(
      check(
        'mutation { placeOrder(input: { idempotencyKey: "k", items: [{ sku: "A", quantity: 1 }], shippingAddress: { name: "Zoë 😀", line1: "Hauptstraße 1" }, paymentMethod: "tok_visa" }) }',
      ),
      undefined,
    );
  });

  it('refuses NUL in an inline argument, naming the argument', () => {
    assertRefused(check('{ product(sku: "SKU\\u0000") }'), 'sku', /^Argument "sku" contains the control character U\+0000/);
  });

  it('refuses NUL in a variable, naming the variable', () => {
    assertRefused(check('query($s: ID!) { product(sku: $s) }', { s: 'SKU\u0000' }), '$s', /^Variable "\$s" contains the control character U\+0000/);
  });

  it('refuses lone surrogates in variables', () => {
    assertRefused(check('query($q: String) { products(search: $q) }', { q: 'x\ud800' }), '$q', /lone UTF-16 surrogate \(U\+D800\)/);
  });

  it('walks nested input objects and lists, inline and in variables', () => {
    const bad = { ...ORDER, shippingAddress: { ...ADDRESS, line1: 'Main St\u0000' } };
    assertRefused(check(PLACE, { input: bad }), '$input.shippingAddress.line1', /U\+0000/);
    const badItem = {
      ...ORDER,
      items: [
        { sku: 'A', quantity: 1 },
        { sku: 'B\u0001', quantity: 1 },
      ],
    };
    assertRefused(check(PLACE, { input: badItem }), '$input.items[1].sku', /U\+0001/);
    assertRefused(
      check(
        'mutation { placeOrder(input: { idempotencyKey: "k", items: [{ sku: "A", quantity: 1 }], shippingAddress: { name: "n", line1: "l", line2: "\\u001b[31m" }, paymentMethod: "p" }) }',
      ),
      'input.shippingAddress.line2',
      /U\+001B/,
    );
  });

  it('checks the default values of variables', () => {
    assertRefused(check('query($q: String = "a\\u0000") { products(search: $q) }'), '$q', /U\+0000/);
  });

  it('limits identifiers by type ID and by name, other strings by the general maximum', () => {
    const long = 'x'.repeat(17);
    assertRefused(check(`{ product(sku: "${long}") }`), 'sku', /17 characters long, more than the 16 allowed/);
    // `after` is a String, but named like a cursor.
    assertRefused(check('query($a: String) { products(after: $a) }', { a: long }), '$a', /more than the 16 allowed/);
    // A variable with a neutral name is an identifier when it is passed to one.
    assertRefused(check('query($c: String) { products(after: $c) }', { c: long }), '$c', /more than the 16 allowed/);
    assertRefused(check(PLACE, { input: { ...ORDER, idempotencyKey: long } }), '$input.idempotencyKey', /more than the 16 allowed/);
    // Free text may be longer than an identifier, up to the general maximum.
    assert.equal(check('query($q: String) { products(search: $q) }', { q: long }), undefined);
    assert.equal(check('query($r: String) { orders(customerRef: $r) }', { r: long }), undefined);
    assertRefused(check('query($q: String) { products(search: $q) }', { q: 'x'.repeat(65) }), '$q', /65 characters long, more than the 64 allowed/);
  });

  it('walks custom scalars generically, identifiers recognised by key name', () => {
    const query = 'query($r: [_Any!]!) { _entities(representations: $r) }';
    assert.equal(check(query, { r: [{ __typename: 'Product', sku: 'SKU-1' }] }), undefined);
    assertRefused(check(query, { r: [{ __typename: 'Product', sku: 'x'.repeat(17) }] }), '$r[0].sku', /more than the 16 allowed/);
    assertRefused(check(query, { r: [{ __typename: 'Product', nested: { deep: ['ok', 'no\u0000'] } }] }), '$r[0].nested.deep[1]', /U\+0000/);
  });

  it('answers values of the wrong shape and absurd nesting without throwing', () => {
    assert.equal(check(PLACE, { input: 'not an object' }), undefined);
    assert.equal(check(PLACE, { input: [1, true, null, { items: 'x' }] }), undefined);
    let deep: unknown = 'bad\u0000';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const refused = check('query($r: [_Any!]!) { _entities(representations: $r) }', { r: deep });
    assert.equal(refused?.extensions.code, 'BAD_USER_INPUT');
    assert.match(refused!.message, /U\+0000/);
    // The path of a value 200,000 lists deep is cut, so the answer stays small.
    assert.equal(refused!.extensions.field, `$r${'[0]'.repeat(66)}…`);
  });

  it('ignores variables the operation does not declare', () => {
    assert.equal(check('{ product(sku: "A") }', { extra: '\u0000' }), undefined);
  });

  it('keeps the plan of a document, so the same document answers the same every time', () => {
    const document = parse('query($s: ID!) { product(sku: $s) }');
    const operation = getOperationAST(document)!;
    for (let i = 0; i < 3; i++) {
      assert.equal(guard.check(schema, document, operation, { s: 'A' }), undefined);
      assert.equal(guard.check(schema, document, operation, { s: 'A\u0000' })?.extensions.field, '$s');
    }
    const inline = parse('{ product(sku: "\\u0000") }');
    const first = guard.check(schema, inline, getOperationAST(inline)!, undefined);
    assert.equal(guard.check(schema, inline, getOperationAST(inline)!, undefined), first);
  });
});

describe('inputLimits', () => {
  it('defaults to 256 for identifiers and 10,000 for other strings', () => {
    assert.deepEqual(inputLimits({}), DEFAULT_INPUT_LIMITS);
    assert.deepEqual(DEFAULT_INPUT_LIMITS, { maxIdLength: 256, maxStringLength: 10_000 });
  });

  it('reads INPUT_MAX_ID_LENGTH and INPUT_MAX_STRING_LENGTH, refusing nonsense', () => {
    assert.deepEqual(inputLimits({ INPUT_MAX_ID_LENGTH: '64', INPUT_MAX_STRING_LENGTH: '5000' }), { maxIdLength: 64, maxStringLength: 5_000 });
    assert.throws(() => inputLimits({ INPUT_MAX_ID_LENGTH: '0' }), ConfigError);
    assert.throws(() => inputLimits({ INPUT_MAX_STRING_LENGTH: 'lots' }), ConfigError);
  });
});
