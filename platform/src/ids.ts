import { badInput } from './errors.ts';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a sku may look like, everywhere in SwiftCart: 1 to 64 letters, digits, '.', '_' or '-'. */
export const SKU_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Length in characters (code points), as PostgreSQL's `length()` and JSON Schema count. */
export function chars(value: string): number {
  return Array.from(value).length;
}

/** Whether `value` is a UUID in its canonical textual form (any case). */
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** Throws BAD_USER_INPUT on `field` unless `sku` matches {@link SKU_PATTERN}. */
export function checkSku(sku: string, field = 'sku'): void {
  if (!SKU_PATTERN.test(sku)) throw badInput(`"${field}" must be 1 to 64 letters, digits, '.', '_' or '-'`, field);
}

/** The longest idempotency key a client may choose (placeOrder, checkout), in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 100;

/** Throws BAD_USER_INPUT on `field` unless `key` is 1 to {@link MAX_IDEMPOTENCY_KEY_LENGTH} characters (code points), not all blank. */
export function checkIdempotencyKey(key: string, field = 'input.idempotencyKey'): void {
  if (chars(key) < 1 || chars(key) > MAX_IDEMPOTENCY_KEY_LENGTH || key.trim() === '') {
    throw badInput(`"${field}" must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, field);
  }
}
