/** Declaring settings (platform/src/settings.ts): parsing, the errors' wording and the tables' rows. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ConfigError,
  describeSettings,
  flag,
  formatDuration,
  integer,
  invalid,
  oneOf,
  parseSettings,
  replaced,
  setting,
  text,
  url,
  urlList,
  z,
} from '../src/settings.ts';

/** The message of the ConfigError `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('expected a ConfigError');
}

describe('integer', () => {
  const schema = z.object({ SIZE: integer({ default: 10, min: 1, max: 500 }).describe('size') });

  it('takes digits in bounds; unset or blank is the default', () => {
    assert.equal(parseSettings(schema, {}).SIZE, 10);
    assert.equal(parseSettings(schema, { SIZE: '  ' }).SIZE, 10);
    assert.equal(parseSettings(schema, { SIZE: ' 42 ' }).SIZE, 42);
    assert.equal(parseSettings(schema, { SIZE: '500' }).SIZE, 500);
  });

  it('refuses what Number() would take but nobody means, and values out of bounds, naming the variable', () => {
    for (const bad of ['0x10', '1e3', '1.0', '1.5', 'abc', '0', '501', '-1', '9007199254740993']) {
      assert.equal(
        refusal(() => parseSettings(schema, { SIZE: bad })),
        `SIZE must be an integer from 1 to 500, got "${bad}"`,
      );
    }
  });

  it('without a default, unset is undefined', () => {
    const optional = z.object({ LIMIT: integer({ default: undefined, min: 0, max: Number.MAX_SAFE_INTEGER }).describe('limit') });
    assert.equal(parseSettings(optional, {}).LIMIT, undefined);
    assert.equal(parseSettings(optional, { LIMIT: '7' }).LIMIT, 7);
  });
});

describe('the other builders', () => {
  it('oneOf is case-insensitive and lists what it accepts', () => {
    const schema = z.object({
      ROLE: oneOf(['all', 'api', 'worker'], { default: 'all' }).describe('role'),
      SWITCH: oneOf(['on', 'off'], { default: 'on' }).describe('switch'),
    });
    assert.deepEqual(parseSettings(schema, { ROLE: ' API ', SWITCH: 'OFF' }), { ROLE: 'api', SWITCH: 'off' });
    assert.equal(
      refusal(() => parseSettings(schema, { ROLE: 'workers' })),
      'ROLE must be one of all, api, worker, got "workers"',
    );
    assert.equal(
      refusal(() => parseSettings(schema, { SWITCH: 'no' })),
      'SWITCH must be "on" or "off", got "no"',
    );
  });

  it('url checks that it is one, and its protocol; urlList each entry', () => {
    const schema = z.object({
      DB: url({ default: 'postgresql://localhost', protocols: ['postgresql:', 'postgres:'] }).describe('db'),
      REPLICAS: urlList({ protocols: ['http:', 'https:'], defaultText: 'none' }).describe('replicas'),
    });
    assert.deepEqual(parseSettings(schema, { REPLICAS: 'http://a:1/graphql, https://b:2/graphql,' }), {
      DB: 'postgresql://localhost',
      REPLICAS: ['http://a:1/graphql', 'https://b:2/graphql'],
    });
    assert.equal(
      refusal(() => parseSettings(schema, { DB: 'mysql://x' })),
      'DB must use postgresql: or postgres:, got "mysql://x"',
    );
    assert.equal(
      refusal(() => parseSettings(schema, { REPLICAS: 'http://a:1,nope' })),
      'REPLICAS must be a URL, got "nope"',
    );
  });

  it('text keeps an empty value only when told to, and checks its pattern', () => {
    const schema = z.object({
      PREFIX: text({ default: 'app:', emptyIsUnset: false }).describe('prefix'),
      NAME: text({ default: 'swiftcart', pattern: /^[a-z]+$/, patternText: 'lower-case letters' }).describe('name'),
    });
    assert.deepEqual(parseSettings(schema, { PREFIX: '', NAME: '' }), { PREFIX: '', NAME: 'swiftcart' });
    assert.equal(
      refusal(() => parseSettings(schema, { NAME: 'Swift Cart' })),
      'NAME must be lower-case letters, got "Swift Cart"',
    );
  });

  it('flag is true for "true" only; replaced refuses any value, naming what replaced it', () => {
    const schema = z.object({ OFF: flag().describe('off'), OLD: replaced('set NEW instead') });
    assert.equal(parseSettings(schema, { OFF: 'TRUE' }).OFF, true);
    assert.equal(parseSettings(schema, { OFF: 'yes' }).OFF, false);
    assert.equal(
      refusal(() => parseSettings(schema, { OLD: '' })),
      'OLD is no longer read: set NEW instead',
    );
  });

  it('setting runs a rule of its own; invalid refuses the value', () => {
    const schema = z.object({
      EVEN: setting((raw) => (Number(raw ?? 0) % 2 === 0 ? Number(raw ?? 0) : invalid(`must be even, got "${raw}"`)), { default: '`0`' }).describe('even'),
    });
    assert.equal(parseSettings(schema, { EVEN: '4' }).EVEN, 4);
    assert.equal(
      refusal(() => parseSettings(schema, { EVEN: '3' })),
      'EVEN must be even, got "3"',
    );
  });
});

describe('parseSettings', () => {
  const schema = z
    .object({
      LOW: integer({ default: 1, min: 0, max: 100 }).describe('low'),
      HIGH: integer({ default: 2, min: 0, max: 100 }).describe('high'),
    })
    .superRefine((s, ctx) => {
      if (s.HIGH < s.LOW) ctx.addIssue({ code: 'custom', path: ['HIGH'], message: `(${s.HIGH}) must be at least LOW (${s.LOW})` });
    });

  it('names every variable at fault in one ConfigError', () => {
    assert.equal(
      refusal(() => parseSettings(schema, { LOW: 'x', HIGH: '101' })),
      'LOW must be an integer from 0 to 100, got "x"; HIGH must be an integer from 0 to 100, got "101"',
    );
  });

  it('reports a rule between variables under the variable at fault', () => {
    assert.equal(
      refusal(() => parseSettings(schema, { LOW: '50', HIGH: '10' })),
      'HIGH (10) must be at least LOW (50)',
    );
  });
});

describe('describeSettings', () => {
  it('gives each variable its default and meaning, bounds worded, through refinements and transforms', () => {
    const schema = z
      .object({
        WAIT_MS: integer({ default: 600_000, min: 100, max: 7 * 86_400_000, unit: 'ms' }).describe('how long to wait'),
        WINDOW_SECONDS: integer({ default: 60, min: 1, max: 86_400, unit: 's' }).describe('the window'),
        MODE: oneOf(['fast', 'safe'], { default: undefined, defaultText: '`safe` (`fast` in tests)' }).describe('the mode'),
        OLD_MS: replaced('set WAIT_MS'),
      })
      .superRefine(() => undefined)
      .transform((s) => ({ waitMs: s.WAIT_MS }));
    assert.deepEqual(describeSettings(schema), [
      { variable: 'WAIT_MS', default: '`600000` (10 minutes)', meaning: 'how long to wait — 100 ms to 7 days' },
      { variable: 'WINDOW_SECONDS', default: '`60` (1 minute)', meaning: 'the window — 1 s to 1 day' },
      { variable: 'MODE', default: '`safe` (`fast` in tests)', meaning: 'the mode — `fast` or `safe`' },
    ]);
  });

  it('refuses a variable without a description or a builder', () => {
    assert.throws(() => describeSettings(z.object({ BARE: integer({ default: 1, min: 0, max: 2 }) })), /BARE needs .* \.describe\(\) text/);
    assert.throws(() => describeSettings(z.object({ RAW: z.string().describe('raw') })), /RAW needs a builder/);
  });

  it('words durations the way the tables do', () => {
    assert.deepEqual([0, 200, 1_500, 2_000, 60_000, 3_600_000, 86_400_000, 7 * 86_400_000].map(formatDuration), [
      '0 ms',
      '200 ms',
      '1,500 ms',
      '2 s',
      '1 minute',
      '1 hour',
      '1 day',
      '7 days',
    ]);
  });
});
