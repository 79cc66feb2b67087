/** `npm run token`: a valid token on good arguments, usage and exit code 2 on bad ones. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT, viewerFromAuthorization } from '@swiftcart/platform';

const SECRET = 'token-script-test-secret-0123456789abcdef';

function token(...args: string[]) {
  const result = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'token.ts'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, JWT_SECRET: SECRET, NODE_ENV: 'development' },
  });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

test('good arguments print a token the platform verifies to that viewer', async () => {
  const result = token('--sub', 'alice', '--roles', 'customer,admin', '--expires', '1h');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const viewer = await viewerFromAuthorization(`Bearer ${result.stdout}`, SECRET);
  const [, payload] = result.stdout.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
  assert.deepEqual(viewer, { customerId: 'alice', roles: ['customer', 'admin'], expiresAt: claims.exp * 1000 });
  assert.ok(Math.abs(claims.exp - claims.iat - 3600) <= 1, 'expires in one hour');
});

test('roles default to customer and the lifetime to 12 hours', async () => {
  const result = token('--sub', 'bob');
  assert.equal(result.status, 0, result.stderr);
  const viewer = await viewerFromAuthorization(`Bearer ${result.stdout}`, SECRET);
  const claims = JSON.parse(Buffer.from(result.stdout.split('.')[1], 'base64url').toString());
  assert.deepEqual(viewer, { customerId: 'bob', roles: ['customer'], expiresAt: claims.exp * 1000 });
  assert.ok(Math.abs(claims.exp - claims.iat - 12 * 3600) <= 1);
});

test('bad arguments print usage on stderr and exit 2, with nothing on stdout', () => {
  const cases: [string[], RegExp][] = [
    [[], /--sub is required/],
    [['--roles', 'admin'], /--sub is required/],
    [['--sub', 'x', '--roles', 'root'], /unknown role "root"/],
    [['--sub', 'x', '--roles', 'customer,wizard'], /unknown role "wizard"/],
    [['--sub', 'x', '--bogus'], /Unknown option '--bogus'/],
    [['--sub', 'x', '--expires', 'forever'], /--expires/],
    [['--sub', 'x', 'positional'], /positional/],
  ];
  for (const [args, message] of cases) {
    const result = token(...args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.equal(result.stdout, '', args.join(' '));
    assert.match(result.stderr, message, args.join(' '));
    assert.match(result.stderr, /usage: npm run token/, args.join(' '));
  }
});
