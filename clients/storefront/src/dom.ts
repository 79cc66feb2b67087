/** A tiny DOM builder, so views stay declarative without a framework. */

type Child = Node | string | number | null | undefined | false;
type Attr = string | number | boolean | ((event: Event) => void) | undefined;

/**
 * Creates `<tag>` with attributes and children. `on*` attributes become listeners; `false` and
 * `undefined` attributes are left out; text children are inserted as text (never as HTML, so
 * product names cannot inject markup).
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, Attr> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'value' && 'value' in element) (element as HTMLInputElement).value = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return element;
}

/** Formats an API amount for people (minor units: `1999, EUR` is €19.99); see ./money.ts. */
export { money } from './money.ts';

/** Formats a timestamp in the reader's locale. */
export function when(at: string): string {
  return new Date(at).toLocaleString();
}

/** The parts of an address one line shows (a saved address, or an order's shipping address). */
export interface AddressParts {
  readonly name: string;
  readonly line1: string;
  readonly line2?: string | null;
  readonly city: string;
  readonly postalCode: string;
  readonly country: string;
}

/** The address a form's fields hold (`name`, `line1`, `line2`, `city`, `postalCode`, `country`), trimmed; an empty apartment line is null. */
export function addressFromForm(form: HTMLFormElement): AddressParts {
  const data = new FormData(form);
  const text = (name: string) => String(data.get(name) ?? '').trim();
  return {
    name: text('name'),
    line1: text('line1'),
    line2: text('line2') || null,
    city: text('city'),
    postalCode: text('postalCode'),
    country: text('country').toUpperCase(),
  };
}

/** An address on one line: "Ada Lovelace, Hauptstraße 1, 10115 Berlin, DE". */
export function addressText(address: AddressParts): string {
  return [address.name, address.line1, address.line2, `${address.postalCode} ${address.city}`, address.country].filter(Boolean).join(', ');
}
