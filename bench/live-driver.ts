/**
 * The stock-change driver started by bench/live.ts: changes stock on the real commit path, the
 * inventory's `StockLedger.adjust` (one PostgreSQL transaction, then the Redis publish of the
 * committed figure that the inventory subgraph's subscriptions listen to), at a fixed rate, and
 * reports when each (sku, version) committed. Runs in its own process so that neither the bench's
 * bookkeeping nor the gateway under test delays a commit or its timestamp. Not run directly.
 *
 * - Skus are changed round robin, +1 then −1 alternately per sku, so stock stays within one unit
 *   of where it started and never runs out.
 * - At most one change per sku is in flight: two crossing announcements of the same sku would let
 *   the ledger drop the older one on purpose (it never publishes a figure older than Redis holds),
 *   which the bench would then count as lost. A change whose sku is still busy waits; the wait
 *   shows as schedule lag.
 * - Changes are committed in batches: each tick (every few ms) commits the changes that are due in
 *   ONE transaction, with the statements of `StockLedger.adjust` in multi-row form (each change
 *   bumps its sku's version and writes its audit row), then announces every committed figure
 *   through the inventory's own `StockLedger.announce`: one Redis message per change, exactly as
 *   `adjustStock` sends it. One transaction per change would spend about a core of this 2-core
 *   machine in the driver and PostgreSQL alone at 1,000 changes/s, starving what is measured.
 * - The commit time is taken in `announce`, called right after the transaction has committed and
 *   before the publish: the moment the change became the truth.
 */
import { loadConfig, openRuntime } from '@swiftcart/platform';
import { inventoryService } from '../subgraphs/inventory/src/service.ts';
import { type StockRow, toStockRecord } from '../subgraphs/inventory/src/entities.ts';
import { StockLedger } from '../subgraphs/inventory/src/stock.ts';
import { percentile } from './lib.ts';
import { type CommitBatch, type DriverSummary, type LiveDriverReply, type LiveDriverRequest, epochNow } from './live-protocol.ts';

if (!process.send) {
  console.error('bench/live-driver.ts is started by bench/live.ts, not directly');
  process.exit(2);
}

/** Transactions in flight at most (bench/live.ts gives this process a larger database pool). */
const MAX_IN_FLIGHT = 8;
/** Changes committed together at most. */
const MAX_BATCH = 100;
/** How often due changes are committed: at 1,000 changes/s, about 10 per transaction. */
const TICK_MS = 10;

/** `StockLedger.adjust`'s statements for many skus at once: version bump and audit row per change. */
const ADJUST_MANY = `
  with changes as (select * from jsonb_to_recordset(?::jsonb) as c(sku text, delta integer)),
  updated as (
    update stock s set on_hand = s.on_hand + c.delta, version = s.version + 1, updated_at = now()
    from changes c where s.sku = c.sku and s.on_hand + c.delta >= s.reserved
    returning s.sku, s.on_hand, s.reserved, s.version, s.updated_at, c.delta
  ),
  audited as (
    insert into stock_adjustment (sku, delta, reason, actor, on_hand_after)
    select sku, delta, 'bench live: stock change', 'bench-live', on_hand from updated
  )
  select sku, on_hand, reserved, version, updated_at from updated`;
/** How often committed changes are reported. */
const REPORT_EVERY_MS = 100;

const config = loadConfig();
const opened = await openRuntime(inventoryService, { config, migrate: false });
const { runtime } = opened;

let skuIndex = new Map<string, number>();
let pending = { sku: [] as number[], version: [] as number[], at: [] as number[] };

/** The real ledger; only `announce` is wrapped, to note the commit time before publishing. */
class TimedLedger extends StockLedger {
  override announce(record: Parameters<StockLedger['announce']>[0]): Promise<void> {
    const at = epochNow();
    const index = skuIndex.get(record.sku);
    if (index !== undefined) {
      pending.sku.push(index);
      pending.version.push(record.version);
      pending.at.push(at);
    }
    return super.announce(record);
  }
}
const ledger = new TimedLedger(runtime);

/** Changes made per sku so far in this process: even → +1, odd → −1. */
const changesMade = new Map<string, number>();

function flush(): void {
  if (pending.sku.length === 0) return;
  const commits: CommitBatch = { sku: Int32Array.from(pending.sku), version: Float64Array.from(pending.version), at: Float64Array.from(pending.at) };
  pending = { sku: [], version: [], at: [] };
  process.send!({ type: 'commits', commits } satisfies LiveDriverReply);
}

let current: { stop: () => Promise<DriverSummary> } | null = null;

function run(rate: number, skus: readonly string[]): { stop: () => Promise<DriverSummary> } {
  skuIndex = new Map(skus.map((sku, i) => [sku, i]));
  const busy = new Uint8Array(skus.length);
  const durations: number[] = [];
  const errorSamples = new Set<string>();
  let issued = 0,
    committed = 0,
    failed = 0,
    inFlight = 0,
    maxLag = 0;
  let stopping = false;
  let idle: (() => void) | null = null;
  const started = performance.now();
  const reporter = setInterval(flush, REPORT_EVERY_MS);

  const commit = async (indices: readonly number[]) => {
    for (const index of indices) busy[index] = 1;
    inFlight += 1;
    const t0 = performance.now();
    try {
      const changes = indices.map((index) => ({ sku: skus[index], delta: (changesMade.get(skus[index]) ?? 0) % 2 === 0 ? 1 : -1 }));
      const rows = await runtime.db.fork().transactional((tx) => tx.execute<StockRow[]>(ADJUST_MANY, [JSON.stringify(changes)]));
      await Promise.all(rows.map((row) => ledger.announce(toStockRecord(row))));
      for (const row of rows) changesMade.set(row.sku, (changesMade.get(row.sku) ?? 0) + 1);
      committed += rows.length;
      failed += indices.length - rows.length;
      const elapsed = performance.now() - t0;
      for (let i = 0; i < rows.length; i++) durations.push(elapsed);
    } catch (error) {
      failed += indices.length;
      if (errorSamples.size < 5) errorSamples.add((error as Error).message.slice(0, 200));
    } finally {
      for (const index of indices) busy[index] = 0;
      inFlight -= 1;
      if (inFlight === 0 && idle) idle();
    }
  };

  // Change n is due at started + n / rate; each tick starts every change that is due and can start.
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (stopping) return;
    const now = performance.now();
    const due = Math.floor(((now - started) * rate) / 1000);
    const batch: number[] = [];
    while (issued < due && inFlight < MAX_IN_FLIGHT && batch.length < MAX_BATCH) {
      const index = issued % skus.length;
      if (busy[index] || batch.includes(index)) break;
      maxLag = Math.max(maxLag, now - (started + (issued * 1000) / rate));
      issued += 1;
      batch.push(index);
    }
    if (batch.length) void commit(batch);
    clearTimeout(timer);
    timer = setTimeout(tick, TICK_MS);
  };
  tick();

  return {
    async stop() {
      stopping = true;
      clearTimeout(timer);
      if (inFlight > 0)
        await new Promise<void>((resolve) => {
          idle = resolve;
        });
      clearInterval(reporter);
      flush();
      const sorted = Float64Array.from(durations).sort();
      return {
        issued,
        committed,
        failed,
        errorSamples: [...errorSamples],
        elapsedMs: performance.now() - started,
        maxScheduleLagMs: maxLag,
        commitMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99) },
      };
    },
  };
}

process.on('message', (message: LiveDriverRequest) => {
  if (message.type === 'exit') {
    void opened.close().finally(() => process.exit(0));
  } else if (message.type === 'run') {
    if (current) {
      process.send!({ type: 'failed', error: 'already running' } satisfies LiveDriverReply);
      return;
    }
    current = run(message.rate, message.skus);
  } else if (message.type === 'stop') {
    const running = current;
    current = null;
    if (!running) {
      process.send!({ type: 'failed', error: 'not running' } satisfies LiveDriverReply);
      return;
    }
    running.stop().then(
      (summary) => process.send!({ type: 'stopped', summary } satisfies LiveDriverReply),
      (error) => process.send!({ type: 'failed', error: (error as Error).message } satisfies LiveDriverReply),
    );
  }
});
// Ctrl-C reaches the whole process group: the bench decides when the driver stops.
process.on('SIGINT', () => {});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', pid: process.pid } satisfies LiveDriverReply);
