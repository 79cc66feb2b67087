/**
 * Prints a development bearer token signed with this environment's JWT_SECRET:
 *
 *   npm run token -- --sub alice --roles customer,admin --expires 1h
 *
 * Use it as `Authorization: Bearer <token>` in Sandbox's headers panel or with curl.
 */
import { parseArgs } from 'node:util';
import { ROLES, signToken, type Role } from '../platform/src/auth.ts';
import { loadConfig } from '../platform/src/config.ts';

const USAGE = `usage: npm run token -- --sub <subject> [--roles ${ROLES.join(',')}] [--expires 12h]

  --sub      the subject: a customer id or a person's name (required)
  --roles    comma-separated roles from: ${ROLES.join(', ')} (default: customer)
  --expires  lifetime such as 30m, 12h, 7d (default: 12h)

The token is signed with JWT_SECRET (the development secret when unset).`;

/** Fails with the usage text and exit code 2, the convention for bad command-line arguments. */
function usage(problem: string): never {
  console.error(`token: ${problem}\n\n${USAGE}`);
  process.exit(2);
}

let values: { sub?: string; roles?: string; expires?: string; help?: boolean };
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: 'string' },
      roles: { type: 'string', default: 'customer' },
      expires: { type: 'string', default: '12h' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const sub = values.sub?.trim();
if (!sub) usage('--sub is required');
const roles = values
  .roles!.split(',')
  .map((r) => r.trim())
  .filter(Boolean);
if (roles.length === 0) usage('--roles must name at least one role');
const unknown = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
if (unknown.length) usage(`unknown role${unknown.length > 1 ? 's' : ''} ${unknown.map((r) => `"${r}"`).join(', ')}; roles are ${ROLES.join(', ')}`);
const expires = values.expires!;
if (!/^\d+\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|week|weeks)$/i.test(expires)) {
  usage(`--expires must be a duration such as 30m, 12h or 7d, got "${expires}"`);
}

try {
  const token = await signToken(loadConfig().jwtSecret, { sub, roles: [...new Set(roles)] as Role[] }, expires);
  console.log(token);
} catch (error) {
  console.error(`token: ${(error as Error).message}`);
  process.exit(1);
}
