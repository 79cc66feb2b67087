/**
 * Checks of what customers type: bounded text and postal addresses. One set of rules for the
 * addresses a customer saves (customer service) and the ones an order ships to (order service), so
 * an address that can be saved can always be shipped to.
 */
import countries from 'i18n-iso-countries';
import { badInput } from './errors.ts';
import { chars } from './ids.ts';

/** A postal address as customers type it; `line2` is optional. */
export interface PostalAddressInput {
  readonly name: string;
  readonly line1: string;
  readonly line2?: string | null;
  readonly city: string;
  readonly postalCode: string;
  readonly country: string;
}

/** A checked postal address: every string trimmed, an empty `line2` made null. */
export interface PostalAddress {
  readonly name: string;
  readonly line1: string;
  /** Null when the customer gave none. */
  readonly line2: string | null;
  readonly city: string;
  readonly postalCode: string;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly country: string;
}

/** `value` trimmed; BAD_USER_INPUT on `field` unless it then has `min` to `max` characters. */
export function checkText(value: string, field: string, min: number, max: number): string {
  const trimmed = value.trim();
  const length = chars(trimmed);
  if (length < min || length > max) {
    throw badInput(min > 0 ? `"${field}" must be ${min} to ${max} characters` : `"${field}" must be at most ${max} characters`, field);
  }
  return trimmed;
}

const UPPER_ALPHA_2 = /^[A-Z]{2}$/;

/** Whether `code` is the upper-case ISO 3166-1 alpha-2 code of a country (`DE`, not `de`, `DEU` or `EU`). */
export function isCountryCode(code: string): boolean {
  return UPPER_ALPHA_2.test(code) && countries.isValid(code);
}

/**
 * Checks an address (BAD_USER_INPUT naming `${at}.<field>` for the first problem): the recipient's
 * name and line 1 up to 200 characters, line 2 optional up to 200, the city up to 100, the postal
 * code up to 20, and the country an ISO 3166-1 alpha-2 code of a country that exists.
 */
export function checkPostalAddress(address: PostalAddressInput, at: string): PostalAddress {
  const country = address.country.trim();
  if (!isCountryCode(country)) {
    throw badInput(`"${at}.country" must be the ISO 3166-1 alpha-2 code of a country in upper case, e.g. DE`, `${at}.country`);
  }
  const line2 = address.line2 == null ? '' : checkText(address.line2, `${at}.line2`, 0, 200);
  return {
    name: checkText(address.name, `${at}.name`, 1, 200),
    line1: checkText(address.line1, `${at}.line1`, 1, 200),
    line2: line2 === '' ? null : line2,
    city: checkText(address.city, `${at}.city`, 1, 100),
    postalCode: checkText(address.postalCode, `${at}.postalCode`, 1, 20),
    country,
  };
}
