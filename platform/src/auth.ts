import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { ErrorCode, apiError } from './errors.ts';

/** The roles a SwiftCart token can carry. */
export const ROLES = ['customer', 'admin'] as const;

/** One role claim value. */
export type Role = (typeof ROLES)[number];

/** Who is calling: from the bearer token's `sub` and `roles` claims, or anonymous. */
export interface Viewer {
  readonly customerId: string | null;
  readonly roles: readonly Role[];
  /**
   * When the token stops being valid (its `exp`, in ms since the epoch); null for the anonymous
   * viewer. Long-lived connections (subscriptions) end at this instant.
   */
  readonly expiresAt: number | null;
}

/** The caller when no token was sent. */
export const ANONYMOUS: Viewer = Object.freeze({ customerId: null, roles: Object.freeze([]) as readonly Role[], expiresAt: null });

/** The HTTP header that carries the token, lower-case as Node presents it. */
export const AUTHORIZATION_HEADER = 'authorization';

const ALGORITHM = 'HS256';

function key(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

/** Signs a development or test token with `sub` and `roles` claims. */
export async function signToken(secret: string, claims: { sub: string; roles: readonly Role[] }, expiresIn: string | number = '12h'): Promise<string> {
  for (const role of claims.roles) {
    if (!ROLES.includes(role)) throw new Error(`unknown role "${role}"; roles are ${ROLES.join(', ')}`);
  }
  return new SignJWT({ roles: [...claims.roles] })
    .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key(secret));
}

/**
 * The secret tokens are verified with, or the secrets (`Config.acceptedJwtSecrets`: the current one,
 * then one being retired, docs/deploy.md "Rotating secrets"): a token signed with any of them is valid.
 */
export type VerificationSecrets = string | readonly string[];

/** A token's payload, verified with the first of `secrets` whose signature matches. */
async function verifyWithAny(token: string, secrets: VerificationSecrets) {
  const keys = typeof secrets === 'string' ? [secrets] : secrets;
  for (let i = 0; ; i++) {
    try {
      // A token without an expiry would be valid forever: `exp` is required.
      return await jwtVerify(token, key(keys[i]), { algorithms: [ALGORITHM], requiredClaims: ['sub', 'exp'] });
    } catch (error) {
      // Only a signature made with another key is worth the next key; expiry and claims are checked after it.
      if (!(error instanceof joseErrors.JWSSignatureVerificationFailed) || i === keys.length - 1) throw error;
    }
  }
}

/**
 * Turns an `Authorization` header into a viewer. No header means anonymous; a header that is not
 * a valid, unexpired HS256 bearer token with a `sub` and known roles is an UNAUTHENTICATED error,
 * never a silent downgrade to anonymous.
 */
export async function viewerFromAuthorization(header: string | undefined | null, secrets: VerificationSecrets): Promise<Viewer> {
  if (!header) return ANONYMOUS;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw apiError(ErrorCode.Unauthenticated, 'Authorization header must be "Bearer <token>"');
  try {
    const { payload } = await verifyWithAny(match[1], secrets);
    const roles = payload.roles ?? [];
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('the token has no sub claim');
    if (!Array.isArray(roles) || !roles.every((r): r is Role => ROLES.includes(r as Role))) {
      throw new Error(`roles must be a list of ${ROLES.join(', ')}`);
    }
    return Object.freeze({ customerId: payload.sub, roles: Object.freeze(roles), expiresAt: payload.exp! * 1000 });
  } catch (error) {
    const reason =
      error instanceof joseErrors.JWTExpired
        ? 'the token has expired'
        : error instanceof joseErrors.JWSSignatureVerificationFailed
          ? 'the token signature is invalid'
          : error instanceof Error
            ? error.message
            : String(error);
    throw apiError(ErrorCode.Unauthenticated, `Invalid token: ${reason}`);
  }
}

/** Throws FORBIDDEN unless the viewer holds `role`; the message says what was missing. */
export function requireRole(viewer: Viewer, role: Role): void {
  if (viewer.roles.includes(role)) return;
  const who = viewer.customerId === null ? 'no token was sent' : `the token of "${viewer.customerId}" lacks it`;
  throw apiError(ErrorCode.Forbidden, `This operation requires the ${role} role: ${who}`, { requiredRole: role });
}

/** Throws FORBIDDEN unless the viewer holds at least one of `roles`; the message names them. */
export function requireAnyRole(viewer: Viewer, roles: readonly Role[]): void {
  if (roles.some((role) => viewer.roles.includes(role))) return;
  const who = viewer.customerId === null ? 'no token was sent' : `the token of "${viewer.customerId}" holds none of them`;
  throw apiError(ErrorCode.Forbidden, `This operation requires one of the roles ${roles.join(', ')}: ${who}`, { requiredRoles: [...roles] });
}

/** The roles that may place, cancel and read orders, and read an order's payment and shipment. */
export const ORDER_ROLES: readonly Role[] = Object.freeze(['customer', 'admin'] as const);

/**
 * The caller's customer id for an order operation: UNAUTHENTICATED without a token, FORBIDDEN
 * when the token holds none of {@link ORDER_ROLES} (a token with no roles is no customer).
 * `what` names what was asked for.
 */
export function requireOrderAccess(viewer: Viewer, what: string): string {
  const customerId = requireCustomer(viewer, what);
  requireAnyRole(viewer, ORDER_ROLES);
  return customerId;
}

/** The caller's customer id; UNAUTHENTICATED when no token was sent. `what` names what was asked for. */
export function requireCustomer(viewer: Viewer, what: string): string {
  if (viewer.customerId === null) throw apiError(ErrorCode.Unauthenticated, `Reading ${what} requires a token`);
  return viewer.customerId;
}

/** The one ownership rule: a customer reads its own data, an admin reads everyone's. */
export function canRead(viewer: Viewer, ownerId: string): boolean {
  return viewer.customerId === ownerId || viewer.roles.includes('admin');
}
