/**
 * `#/admin`: the sales dashboard, for admins. Orders confirmed and revenue per hour over the last
 * 24 hours as a chart (uPlot) with the same figures in a table beside it, kept live by
 * `salesUpdated` (HOUR): every bucket it sends is merged into the series by its start, so the page
 * follows orders as they are confirmed without a reload. Below, the top products of those hours,
 * read again whenever what was sold changes. The data logic is ../sales.ts.
 */
import uPlot from 'uplot';
import { client } from '../api.ts';
import { h } from '../dom.ts';
import { describeError } from '../errors.ts';
import { money, moneyAxisLabel } from '../money.ts';
import {
  DASHBOARD_HOURS,
  type HourlySeries,
  type SalesBucket,
  advanceSeries,
  axisHourLabel,
  bucketStart,
  chartData,
  currentHour,
  hourLabel,
  hourlySeries,
  mergeBucket,
  salesWindow,
  seriesTotals,
  soldChanged,
} from '../sales.ts';
import { currentSession, isAdmin } from '../session.ts';
import { follow, type View } from './view.ts';

/** How many products the top products table lists. */
const TOP_PRODUCTS = 10;
/** How long after a change of sales the top products are read again (changes in a burst share one read). */
const TOP_PRODUCTS_DELAY_MS = 500;
/** How often the window is checked against the clock, so that a new hour shows even when nothing is sold. */
const CLOCK_TICK_MS = 30_000;
const CHART_HEIGHT = 300;

type TopProduct = Awaited<ReturnType<typeof client.topProducts>>['topProducts'][number];

const isoHour = (bucket: SalesBucket) => new Date(bucketStart(bucket)).toISOString();

/** The figures of the current hour and of the 24 hours, with data attributes the tests read (values, not pixels). */
function figures(series: HourlySeries): HTMLElement {
  const now = currentHour(series);
  const totals = seriesTotals(series);
  return h(
    'dl',
    {
      class: 'sales-figures',
      'data-start': isoHour(now),
      'data-orders-placed': now.ordersPlaced,
      'data-orders-confirmed': now.ordersConfirmed,
      'data-revenue': now.revenue.amount,
      'data-currency': series.currency,
      'data-version': now.version,
      'data-total-orders-confirmed': totals.ordersConfirmed,
      'data-total-revenue': totals.revenue,
    },
    h(
      'div',
      {},
      h('dt', {}, `This hour (${hourLabel(bucketStart(now))} UTC)`),
      h(
        'dd',
        { class: 'this-hour' },
        h('strong', {}, now.ordersConfirmed),
        ` orders confirmed · `,
        h('strong', {}, money(now.revenue.amount, series.currency)),
      ),
    ),
    h(
      'div',
      {},
      h('dt', {}, 'Last 24 hours'),
      h('dd', { class: 'last-24h' }, h('strong', {}, totals.ordersConfirmed), ` orders confirmed · `, h('strong', {}, money(totals.revenue, series.currency))),
    ),
    h(
      'div',
      {},
      h('dt', {}, 'Placed · cancelled · rejected (24 h)'),
      h('dd', {}, `${totals.ordersPlaced} · ${totals.ordersCancelled} · ${totals.ordersRejected}`),
    ),
    h('div', {}, h('dt', {}, 'Units sold · refunds (24 h)'), h('dd', {}, `${totals.unitsSold} · ${money(totals.refunds, series.currency)}`)),
  );
}

/** Every hour's orders and revenue, newest first: the chart's data for screen readers, and for the tests. */
function hoursTable(series: HourlySeries): HTMLTableElement {
  return h(
    'table',
    { class: 'sales-hours' },
    h('caption', {}, 'Sales per hour (UTC), newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Hour'),
        h('th', { scope: 'col' }, 'Placed'),
        h('th', { scope: 'col' }, 'Confirmed'),
        h('th', { scope: 'col' }, 'Cancelled'),
        h('th', { scope: 'col' }, 'Revenue'),
      ),
    ),
    h(
      'tbody',
      {},
      ...[...series.buckets].reverse().map((bucket) =>
        h(
          'tr',
          {
            'data-start': isoHour(bucket),
            'data-orders-placed': bucket.ordersPlaced,
            'data-orders-confirmed': bucket.ordersConfirmed,
            'data-revenue': bucket.revenue.amount,
            'data-version': bucket.version,
          },
          h('th', { scope: 'row' }, hourLabel(bucketStart(bucket))),
          h('td', {}, bucket.ordersPlaced),
          h('td', {}, bucket.ordersConfirmed),
          h('td', {}, bucket.ordersCancelled),
          h('td', {}, money(bucket.revenue.amount, series.currency)),
        ),
      ),
    ),
  );
}

function topProductsTable(products: readonly TopProduct[]): HTMLElement {
  if (!products.length) return h('p', { class: 'top-products empty' }, 'Nothing sold in the last 24 hours yet.');
  return h(
    'table',
    { class: 'top-products' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, '#'),
        h('th', { scope: 'col' }, 'Product'),
        h('th', { scope: 'col' }, 'Units'),
        h('th', { scope: 'col' }, 'Revenue'),
      ),
    ),
    h(
      'tbody',
      {},
      ...products.map((entry, i) =>
        h(
          'tr',
          { 'data-sku': entry.product.sku, 'data-units': entry.unitsSold, 'data-revenue': entry.revenue.amount },
          h('td', {}, i + 1),
          h('td', {}, h('span', { class: 'name' }, entry.product.name), h('br'), h('small', {}, entry.product.sku)),
          h('td', {}, entry.unitsSold),
          h('td', {}, money(entry.revenue.amount, entry.revenue.currency)),
        ),
      ),
    ),
  );
}

/** The chart's options: orders confirmed as bars on the left axis, revenue as a line on the right, hours in UTC. */
function chartOptions(width: number, currency: string): uPlot.Options {
  const orders = (value: number | null) => (value === null ? '–' : String(value));
  const revenue = (value: number | null) => (value === null ? '–' : moneyAxisLabel(value, currency));
  return {
    width,
    height: CHART_HEIGHT,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC'),
    cursor: { drag: { x: false, y: false } },
    scales: {
      // Half an hour either side, so that the first and the last hour's bars are whole.
      x: { time: true, range: (_chart, min, max) => [min - 1_800, max + 1_800] },
      orders: { range: (_chart, _min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] },
      revenue: { range: (_chart, _min, max) => [0, Math.max(10, max * 1.15)] },
    },
    series: [
      { label: 'Hour (UTC)', value: (_chart, seconds) => (seconds === null ? '–' : hourLabel(seconds * 1000)) },
      {
        label: 'Orders confirmed',
        scale: 'orders',
        stroke: '#2357d9',
        fill: 'rgba(35, 87, 217, 0.3)',
        paths: uPlot.paths.bars!({ size: [0.6, 48] }),
        points: { show: false },
        value: (_chart, value) => orders(value),
      },
      { label: 'Revenue', scale: 'revenue', stroke: '#1b6b34', width: 2, value: (_chart, value) => revenue(value) },
    ],
    axes: [
      { stroke: '#667085', values: (_chart, splits) => splits.map((seconds) => axisHourLabel(seconds * 1000)) },
      {
        scale: 'orders',
        label: 'Orders confirmed',
        stroke: '#2357d9',
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000],
        values: (_chart, splits) => splits.map((split) => orders(split)),
      },
      {
        scale: 'revenue',
        side: 1,
        label: `Revenue (${currency})`,
        stroke: '#1b6b34',
        size: 70,
        grid: { show: false },
        values: (_chart, splits) => splits.map((split) => revenue(split)),
      },
    ],
  };
}

function denied(root: HTMLElement, message: string): void {
  root.replaceChildren(h('h2', {}, 'Sales dashboard'), h('p', { class: 'error admin-only' }, message));
}

/** `#/admin`. */
export const adminView: View = (root) => {
  const session = currentSession();
  if (!session) {
    denied(root, 'The sales dashboard is for admins: please sign in as the demo user "admin" (top right).');
    return () => {};
  }
  if (!isAdmin(session)) {
    denied(root, `The sales dashboard is for admins, and ${session.user} is not one: sign in as the demo user "admin" to see it.`);
    return () => {};
  }
  root.replaceChildren(h('h2', {}, 'Sales dashboard'), h('p', { class: 'status' }, 'Loading the sales figures…'));

  let gone = false;
  let series: HourlySeries | null = null;
  /** Buckets salesUpdated sent before salesSummary answered: merged once it has (the version decides). */
  const early: SalesBucket[] = [];
  let chart: uPlot | null = null;
  let resize: ResizeObserver | null = null;
  let topTimer: ReturnType<typeof setTimeout> | undefined;
  let topRead = 0;

  const live = h('p', { class: 'live-status status', 'data-live': 'connecting' }, 'Connecting to live updates…');
  const figuresSlot = h('div', { class: 'figures-slot' });
  const chartBox = h('div', {
    class: 'chart',
    role: 'img',
    'aria-label': `Orders confirmed and revenue per hour over the last ${DASHBOARD_HOURS} hours; the table beside it has the same figures.`,
  });
  const hoursSlot = h('div', { class: 'hours-slot' });
  const topSlot = h('div', { class: 'top-slot' }, h('p', { class: 'status' }, 'Loading the top products…'));

  /** Reads the top products of the window now shown; an answer overtaken by a later read is dropped. */
  const readTopProducts = () => {
    if (!series) return;
    const read = ++topRead;
    const { from, to } = salesWindow(bucketStart(currentHour(series)));
    client.topProducts({ from, to, first: TOP_PRODUCTS, currency: series.currency }).then(
      ({ topProducts }) => {
        if (!gone && read === topRead) topSlot.replaceChildren(topProductsTable(topProducts));
      },
      (error: unknown) => {
        if (!gone && read === topRead) topSlot.replaceChildren(h('p', { class: 'error', role: 'alert' }, describeError(error)));
      },
    );
  };
  const scheduleTopProducts = () => {
    if (topTimer !== undefined) return;
    topTimer = setTimeout(() => {
      topTimer = undefined;
      if (!gone) readTopProducts();
    }, TOP_PRODUCTS_DELAY_MS);
  };

  /** What the chart holds now, read back from it into data attributes: the tests check the chart's own figures, not pixels. */
  const markChart = () => {
    if (!chart) return;
    const [hours, orders, revenue] = chart.data as number[][];
    chartBox.dataset.hours = String(hours.length);
    chartBox.dataset.currentStart = new Date(hours[hours.length - 1] * 1000).toISOString();
    chartBox.dataset.currentOrdersConfirmed = String(orders[orders.length - 1]);
    chartBox.dataset.currentRevenue = String(revenue[revenue.length - 1]);
  };

  /** Shows `next` (figures, table, chart) if it differs from what is shown, and reads the top products again when what was sold changed. */
  const show = (next: HourlySeries) => {
    if (next === series || !series) return;
    const previous = series;
    series = next;
    figuresSlot.replaceChildren(figures(next));
    hoursSlot.replaceChildren(hoursTable(next));
    chart?.setData(chartData(next));
    markChart();
    if (soldChanged(previous, next) || bucketStart(currentHour(previous)) !== bucketStart(currentHour(next))) scheduleTopProducts();
  };

  const onBucket = (bucket: SalesBucket) => {
    if (live.dataset.live !== 'live') {
      live.dataset.live = 'live';
      live.textContent = 'Live: the figures follow orders as they are placed and confirmed.';
    }
    if (series) show(mergeBucket(series, bucket));
    else early.push(bucket);
  };

  // Subscribed before the summary is read: salesUpdated's first payload is the current hour as it is
  // then, so a change between the two reads is not missed (the higher version wins either way).
  const stopLive = follow(
    client.salesUpdated({ granularity: 'HOUR' }),
    ({ salesUpdated }) => {
      if (!gone) onBucket(salesUpdated);
    },
    (error) => {
      if (gone) return;
      live.dataset.live = 'stopped';
      live.className = 'live-status error';
      live.setAttribute('role', 'alert');
      live.textContent = `Live updates stopped: ${describeError(error)} Reload to see the latest.`;
    },
  );
  const clock = setInterval(() => {
    if (series) show(advanceSeries(series, Date.now()));
  }, CLOCK_TICK_MS);

  const now = Date.now();
  client.salesSummary({ ...salesWindow(now), granularity: 'HOUR' }).then(
    ({ salesSummary }) => {
      if (gone) return;
      // No currency asked: the analytics service answers in its own, and salesUpdated follows the same one.
      const currency = salesSummary[0]?.currency ?? 'EUR';
      series = early.reduce(mergeBucket, hourlySeries(salesSummary, now, currency));
      early.length = 0;
      figuresSlot.replaceChildren(figures(series));
      hoursSlot.replaceChildren(hoursTable(series));
      root.replaceChildren(
        h('h2', {}, 'Sales dashboard'),
        live,
        figuresSlot,
        h(
          'div',
          { class: 'sales-overview' },
          h(
            'figure',
            { class: 'sales-chart' },
            chartBox,
            h('figcaption', {}, `Orders confirmed (bars) and revenue (line) per hour over the last ${DASHBOARD_HOURS} hours, UTC.`),
          ),
          hoursSlot,
        ),
        h('h3', {}, `Top products, last ${DASHBOARD_HOURS} hours`),
        topSlot,
      );
      chart = new uPlot(chartOptions(chartBox.clientWidth || 640, currency), chartData(series), chartBox);
      markChart();
      resize = new ResizeObserver(() => {
        const width = chartBox.clientWidth;
        if (chart && width > 0 && width !== chart.width) chart.setSize({ width, height: CHART_HEIGHT });
      });
      resize.observe(chartBox);
      readTopProducts();
    },
    (error: unknown) => {
      if (gone) return;
      stopLive();
      root.replaceChildren(h('h2', {}, 'Sales dashboard'), h('p', { class: 'error', role: 'alert' }, describeError(error)));
    },
  );

  return () => {
    gone = true;
    stopLive();
    clearInterval(clock);
    clearTimeout(topTimer);
    resize?.disconnect();
    chart?.destroy();
  };
};
