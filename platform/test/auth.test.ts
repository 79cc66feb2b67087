import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { GraphQLError } from 'graphql';
import { ANONYMOUS, requireRole, signToken, viewerFromAuthorization } from '../src/auth.ts';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as GraphQLError).extensions?.code as string;
  }
}

describe('auth', () => {
  it('round-trips sub and roles', async () => {
    const token = await signToken(SECRET, { sub: 'alice', roles: ['customer'] });
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.deepEqual(await viewerFromAuthorization(`Bearer ${token}`, SECRET), { customerId: 'alice', roles: ['customer'], expiresAt: exp * 1000 });
  });

  it('treats a missing header as anonymous', async () => {
    assert.equal(await viewerFromAuthorization(undefined, SECRET), ANONYMOUS);
  });

  it('refuses tokens signed with another secret, expired, malformed, or with unknown roles', async () => {
    const other = await signToken(`${SECRET}-other`, { sub: 'alice', roles: ['admin'] });
    const expired = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(new TextEncoder().encode(SECRET));
    const noSub = await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
    const badRole = await new SignJWT({ roles: ['root'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const noExpiry = await new SignJWT({ roles: ['admin'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('x').sign(new TextEncoder().encode(SECRET));
    for (const header of [
      `Bearer ${noExpiry}`,
      `Bearer ${other}`,
      `Bearer ${expired}`,
      `Bearer ${noSub}`,
      `Bearer ${badRole}`,
      'Bearer not.a.jwt',
      'Basic abc',
      `Bearer ${other} extra`,
    ]) {
      assert.equal(await codeOf(viewerFromAuthorization(header, SECRET)), 'UNAUTHENTICATED', header.slice(0, 30));
    }
  });

  it('while a secret is rotated, accepts tokens signed with the current or the previous one, and no other', async () => {
    const previous = `${SECRET}-previous`;
    const accepted = [SECRET, previous] as const;
    const message = async (header: string) => {
      try {
        await viewerFromAuthorization(header, accepted);
        return 'accepted';
      } catch (error) {
        return `${(error as GraphQLError).extensions.code}: ${(error as GraphQLError).message}`;
      }
    };
    const byCurrent = await signToken(SECRET, { sub: 'alice', roles: ['customer'] });
    const byPrevious = await signToken(previous, { sub: 'bob', roles: ['admin'] });
    assert.equal((await viewerFromAuthorization(`Bearer ${byCurrent}`, accepted)).customerId, 'alice');
    assert.deepEqual((await viewerFromAuthorization(`Bearer ${byPrevious}`, accepted)).roles, ['admin']);
    // Once the previous secret is removed, its tokens are refused.
    assert.equal(await codeOf(viewerFromAuthorization(`Bearer ${byPrevious}`, [SECRET])), 'UNAUTHENTICATED');
    const byOther = await signToken(`${SECRET}-other`, { sub: 'mallory', roles: ['admin'] });
    assert.equal(await message(`Bearer ${byOther}`), 'UNAUTHENTICATED: Invalid token: the token signature is invalid');
    // The previous key's verdict is kept: an expired token says so, not "signature invalid".
    const expiredByPrevious = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('bob')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(new TextEncoder().encode(previous));
    assert.equal(await message(`Bearer ${expiredByPrevious}`), 'UNAUTHENTICATED: Invalid token: the token has expired');
  });

  it('refuses to sign an unknown role', async () => {
    await assert.rejects(signToken(SECRET, { sub: 'x', roles: ['root' as 'admin'] }), /unknown role/);
  });

  it('requireRole is FORBIDDEN without the role, and names it', () => {
    assert.throws(
      () => requireRole(ANONYMOUS, 'admin'),
      (e: GraphQLError) => e.extensions.code === 'FORBIDDEN' && /admin role: no token/.test(e.message),
    );
    assert.throws(
      () => requireRole({ customerId: 'bob', roles: ['customer'], expiresAt: null }, 'admin'),
      (e: GraphQLError) => e.extensions.code === 'FORBIDDEN' && /"bob"/.test(e.message),
    );
    assert.doesNotThrow(() => requireRole({ customerId: 'root', roles: ['admin'], expiresAt: null }, 'admin'));
  });
});
