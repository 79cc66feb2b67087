/**
 * The order service's own metrics, read from its database when Prometheus scrapes (platform
 * metrics.ts): how many orders are in each status, and why the ones that ended REJECTED or
 * CANCELLED ended there.
 */
import { type Registry, type ServiceRuntime, scrapedGauge } from '@swiftcart/platform';
import { DEADLINE_REASON } from './saga.ts';

/** Registers `swiftcart_orders` (by status) and `swiftcart_orders_ended_unconfirmed` (by status and cause). */
export function registerOrderMetrics(runtime: ServiceRuntime, registry: Registry): void {
  scrapedGauge(registry, { name: 'swiftcart_orders', help: 'Orders in the database, by status.', labelNames: ['status'] }, async (gauge) => {
    const rows = await runtime.db.fork().execute<{ status: string; n: number }[]>('select status, count(*)::int as n from orders group by status');
    for (const row of rows) gauge.set({ status: row.status }, Number(row.n));
  });
  scrapedGauge(registry, {
    name: 'swiftcart_orders_ended_unconfirmed',
    help: 'Orders that ended REJECTED or CANCELLED, by status and cause: the event that ended them (PaymentDeclined, StockReservationFailed, ...), deadline, or requested (by the customer or an admin).',
    labelNames: ['status', 'cause'],
  }, async (gauge) => {
    const rows = await runtime.db.fork().execute<{ status: string; cause: string; n: number }[]>(`
      select status, cause, count(*)::int as n from (
        -- The transition that ended the order, not the timeline entries after it (a refund).
        select distinct on (t.order_id) t.status, coalesce(t.event_type, case when t.reason = ? then 'deadline' else 'requested' end) as cause
        from order_transition t join orders o on o.id = t.order_id and o.status = t.status
        where t.status in ('REJECTED', 'CANCELLED')
        order by t.order_id, t.at, t.id
      ) ended group by 1, 2`, [DEADLINE_REASON]);
    for (const row of rows) gauge.set({ status: row.status, cause: row.cause }, Number(row.n));
  });
}
