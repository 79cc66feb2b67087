/**
 * What the customer reads: a subject, a text and an HTML body per kind of message, and a short SMS
 * text, each with the order's lines, totals and a link to the order page. Pure: everything comes
 * in as arguments, so the templates are tested without a server.
 */
import escapeHtml from 'escape-html';
import type { NotificationDetails, NotificationKind } from './entities.ts';

/** An amount in minor units, as the events carry it. */
export interface MoneyAmount {
  readonly amount: number;
  readonly currency: string;
}

/** One order line as OrderPlaced priced it. */
export interface OrderLine {
  readonly sku: string;
  readonly quantity: number;
  readonly unitPrice: MoneyAmount;
}

/** What the messages know of an order: its OrderPlaced, kept in `order_summary`. */
export interface OrderSummary {
  readonly orderId: string;
  readonly customerId: string;
  readonly total: MoneyAmount;
  readonly items: readonly OrderLine[];
  readonly placedAt: Date;
}

/** Everything one message is made from. */
export interface MessageInput {
  readonly kind: NotificationKind;
  readonly order: OrderSummary;
  readonly details: NotificationDetails;
  /** The customer's name, when the profile has one. */
  readonly customerName: string | null;
  /** The order page in the storefront. */
  readonly orderUrl: string;
}

/** An e-mail's subject and both bodies. */
export interface RenderedEmail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** The order as customers see it named: the first 8 characters of its id, upper-case. */
export function orderReference(orderId: string): string {
  return orderId.slice(0, 8).toUpperCase();
}

/** The subject of a message, known from the event alone (so a SKIPPED message has one too). */
export function subjectOf(kind: NotificationKind, orderId: string): string {
  const ref = orderReference(orderId);
  switch (kind) {
    case 'ORDER_PLACED':
      return `We received your order ${ref}`;
    case 'ORDER_CONFIRMED':
      return `Your order ${ref} is confirmed`;
    case 'ORDER_CANCELLED':
      return `Your order ${ref} was cancelled`;
    case 'ORDER_REJECTED':
      return `We could not take your order ${ref}`;
    case 'ORDER_SHIPPED':
      return `Your order ${ref} is on its way`;
    case 'ORDER_DELIVERED':
      return `Your order ${ref} was delivered`;
    case 'REFUND_ISSUED':
      return `A refund for your order ${ref}`;
  }
}

/** An amount in minor units as people write it: 19.99 EUR is `€19.99`. */
export function formatMoney(money: MoneyAmount): string {
  const format = new Intl.NumberFormat('en-GB', { style: 'currency', currency: money.currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(money.amount / 10 ** digits);
}

/** The sentence that says what happened, in plain text (the HTML escapes it). */
function headline(input: MessageInput): string {
  const { details } = input;
  // Reasons are sentences of their own; the template adds the full stop.
  const reason = details.reason?.replace(/[.\s]+$/u, '') || 'not given';
  const ref = orderReference(input.order.orderId);
  switch (input.kind) {
    case 'ORDER_PLACED':
      return `Thank you for your order ${ref}. We are reserving your items and taking the payment; you will hear from us again when it is confirmed.`;
    case 'ORDER_CONFIRMED':
      return `Your order ${ref} is paid for and reserved. We will tell you when it leaves our warehouse.`;
    case 'ORDER_CANCELLED':
      return `Your order ${ref} was cancelled. Reason: ${reason}. Any payment taken is refunded.`;
    case 'ORDER_REJECTED':
      return `We could not take your order ${ref}. Reason: ${reason}. Nothing was charged.`;
    case 'ORDER_SHIPPED':
      return `Your order ${ref} left with ${details.carrier ?? 'the carrier'}, tracking number ${details.trackingNumber ?? 'unknown'}.`;
    case 'ORDER_DELIVERED':
      return `Your order ${ref} was delivered. We hope you enjoy it.`;
    case 'REFUND_ISSUED':
      return `We refunded ${details.amount ? formatMoney(details.amount) : 'your payment'} for your order ${ref}. It may take a few days to reach your account.`;
  }
}

function lineTotal(line: OrderLine): MoneyAmount {
  return { amount: line.quantity * line.unitPrice.amount, currency: line.unitPrice.currency };
}

/** The e-mail for `input`: a text body and an HTML body saying the same. */
export function renderEmail(input: MessageInput): RenderedEmail {
  const subject = subjectOf(input.kind, input.order.orderId);
  const greeting = input.customerName ? `Hello ${input.customerName},` : 'Hello,';
  const said = headline(input);
  const lines = input.order.items.map((line) => `${line.quantity} × ${line.sku} at ${formatMoney(line.unitPrice)} = ${formatMoney(lineTotal(line))}`);
  const total = formatMoney(input.order.total);
  const text = [
    greeting,
    '',
    said,
    '',
    'Your order:',
    ...lines.map((l) => `  ${l}`),
    `  Total: ${total}`,
    '',
    `See your order: ${input.orderUrl}`,
    '',
    '— SwiftCart',
    '',
  ].join('\n');
  const rows = input.order.items
    .map(
      (line) =>
        `<tr><td>${escapeHtml(line.sku)}</td><td style="text-align:right">${line.quantity}</td>` +
        `<td style="text-align:right">${escapeHtml(formatMoney(line.unitPrice))}</td><td style="text-align:right">${escapeHtml(formatMoney(lineTotal(line)))}</td></tr>`,
    )
    .join('');
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>
<body style="font-family:sans-serif;color:#222">
<p>${escapeHtml(greeting)}</p>
<p>${escapeHtml(said)}</p>
<table cellpadding="4" style="border-collapse:collapse">
<thead><tr><th align="left">Item</th><th align="right">Qty</th><th align="right">Price</th><th align="right">Line total</th></tr></thead>
<tbody>${rows}</tbody>
<tfoot><tr><th align="left" colspan="3">Total</th><th align="right">${escapeHtml(total)}</th></tr></tfoot>
</table>
<p><a href="${escapeHtml(input.orderUrl)}">See your order</a></p>
<p>— SwiftCart</p>
</body></html>
`;
  return { subject, text, html };
}

/** The SMS for `input`: what happened and the link, without the lines. */
export function renderSms(input: MessageInput): string {
  return `SwiftCart: ${headline(input)} ${input.orderUrl}`;
}
