/**
 * Money as people read it. The API counts in minor units (`1999, EUR` is €19.99), and a currency's
 * own number of decimals says how to divide (0 for JPY, 2 for EUR, 3 for KWD). Pure: no DOM, so
 * the unit tests run it in Node.
 */

/** The number of decimals of `currency` (ISO 4217), as Intl knows it. */
export function currencyDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** An amount in minor units as a number of major units: 1999 EUR → 19.99, 500 JPY → 500. */
export function toMajorUnits(minorUnits: number, currency: string): number {
  return minorUnits / 10 ** currencyDigits(currency);
}

/** Formats an API amount for people: 1999 EUR → "€19.99". */
export function money(minorUnits: number, currency: string): string {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).format(toMajorUnits(minorUnits, currency));
}

/** A chart axis's label for an amount in major units: whole units without decimals ("€1,200"), others with the currency's. */
export function moneyAxisLabel(majorUnits: number, currency: string): string {
  const whole = Number.isInteger(majorUnits);
  return new Intl.NumberFormat('en', { style: 'currency', currency, ...(whole ? { minimumFractionDigits: 0, maximumFractionDigits: 0 } : {}) }).format(
    majorUnits,
  );
}
