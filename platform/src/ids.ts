import { badInput } from './errors.ts';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What a sku may look like, everywhere in SwiftCart: 1 to 64 letters, digits, '.', '_' or '-'. */
export const SKU_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Whether `value` is a UUID in its canonical textual form (any case). */
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** Throws BAD_USER_INPUT on `field` unless `sku` matches {@link SKU_PATTERN}. */
export function checkSku(sku: string, field = 'sku'): void {
  if (!SKU_PATTERN.test(sku)) throw badInput(`"${field}" must be 1 to 64 letters, digits, '.', '_' or '-'`, field);
}
