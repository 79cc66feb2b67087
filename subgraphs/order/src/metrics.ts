/**
 * The order service's own metrics (platform metrics.ts). A process that runs workers reads from the
 * database at each scrape how many orders are in each status, and why the ones that ended REJECTED
 * or CANCELLED ended there; a process that serves the API reports its admission gate.
 */
import { type Registry, type ServiceRuntime, runsWorkers, scrapedCounter, scrapedGauge, servesApi } from '@swiftcart/platform';
import type { SagaAdmission } from './admission.ts';
import { DEADLINE_REASON } from './saga.ts';

/**
 * Registers `swiftcart_orders` (by status) and `swiftcart_orders_ended_unconfirmed` (by status and
 * cause) where workers run, and the admission gate's figures where the API is served.
 */
export function registerOrderMetrics(runtime: ServiceRuntime, registry: Registry, admission: () => SagaAdmission): void {
  if (servesApi(runtime.config.serviceRole)) registerAdmissionMetrics(registry, admission);
  if (!runsWorkers(runtime.config.serviceRole)) return;
  scrapedGauge(registry, { name: 'swiftcart_orders', help: 'Orders in the database, by status.', labelNames: ['status'] }, async (gauge) => {
    const rows = await runtime.db.fork().execute<{ status: string; n: number }[]>('select status, count(*)::int as n from orders group by status');
    for (const row of rows) gauge.set({ status: row.status }, Number(row.n));
  });
  scrapedGauge(
    registry,
    {
      name: 'swiftcart_orders_ended_unconfirmed',
      help: 'Orders that ended REJECTED or CANCELLED, by status and cause: the event that ended them (PaymentDeclined, StockReservationFailed, ...), deadline, or requested (by the customer or an admin).',
      labelNames: ['status', 'cause'],
    },
    async (gauge) => {
      const rows = await runtime.db.fork().execute<{ status: string; cause: string; n: number }[]>(
        `
      select status, cause, count(*)::int as n from (
        -- The transition that ended the order, not the timeline entries after it (a refund).
        select distinct on (t.order_id) t.status, coalesce(t.event_type, case when t.reason = ? then 'deadline' else 'requested' end) as cause
        from order_transition t join orders o on o.id = t.order_id and o.status = t.status
        where t.status in ('REJECTED', 'CANCELLED')
        order by t.order_id, t.at, t.id
      ) ended group by 1, 2`,
        [DEADLINE_REASON],
      );
      for (const row of rows) gauge.set({ status: row.status, cause: row.cause }, Number(row.n));
    },
  );
}

function registerAdmissionMetrics(registry: Registry, admission: () => SagaAdmission): void {
  scrapedGauge(
    registry,
    {
      name: 'swiftcart_admission_open',
      help: 'Whether placeOrder admits new orders (1) or refuses them with OVERLOADED because the saga lags (0).',
    },
    async (gauge) => gauge.set(admission().isOpen ? 1 : 0),
  );
  scrapedGauge(
    registry,
    {
      name: 'swiftcart_admission_lag_seconds',
      help: 'The saga lag admission control measured last: the age of the ORDER_ADMISSION_LAG_RANK-th oldest PENDING order.',
    },
    async (gauge) => gauge.set(admission().lagMs / 1000),
  );
  scrapedCounter(
    registry,
    {
      name: 'swiftcart_admission_refused_total',
      help: 'placeOrder calls refused with OVERLOADED since the process started.',
    },
    (count) => count(admission().refused),
  );
}
