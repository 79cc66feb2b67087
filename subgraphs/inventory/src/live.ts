/**
 * `Subscription.stockLevelChanged`: the live stock of some skus, fed by what {@link StockLedger.announce}
 * publishes after every committed change (docs/live.md). The messages carry the committed figure
 * with its version, so a change costs no query; only a resubscription (messages may have been lost)
 * re-reads the figures from PostgreSQL.
 */
import { badInput, checkSku, liveQuery, type EntityManager, type LiveFeed, type LiveIterator, type Logger, type ServiceRuntime } from '@swiftcart/platform';
import type { StockRecord } from './entities.ts';
import { loadStock, stockChannel } from './stock.ts';

/** The most skus one subscription may follow. */
export const MAX_FOLLOWED_SKUS = 100;

/** Checks the `skus` argument: 1 to 100 valid skus, each at most once; BAD_USER_INPUT otherwise. */
export function checkFollowedSkus(skus: readonly string[]): void {
  if (skus.length < 1 || skus.length > MAX_FOLLOWED_SKUS) {
    throw badInput(`"skus" must hold 1 to ${MAX_FOLLOWED_SKUS} skus, got ${skus.length}`, 'skus');
  }
  const seen = new Set<string>();
  for (const [i, sku] of skus.entries()) {
    checkSku(sku, `skus[${i}]`);
    if (seen.has(sku)) throw badInput(`"skus[${i}]": each sku may appear once, "${sku}" is repeated`, `skus[${i}]`);
    seen.add(sku);
  }
}

/**
 * A stock announcement as {@link StockLedger.announce} publishes it, checked: a message that is not
 * a figure of `sku` with whole numbers throws (and is dropped) rather than reaching a client.
 */
export function parseStockMessage(message: string, sku: string): StockRecord {
  const value = JSON.parse(message) as Partial<StockRecord>;
  const whole = (n: unknown) => Number.isInteger(n) && (n as number) >= 0;
  if (value?.sku !== sku || !whole(value.onHand) || !whole(value.reserved) || !whole(value.available) || !whole(value.version)) {
    throw new Error(`not a stock figure of ${sku}`);
  }
  return {
    sku,
    onHand: value.onHand!,
    reserved: value.reserved!,
    available: value.available!,
    version: value.version!,
    updatedAt: typeof value.updatedAt === 'string' && value.updatedAt !== '' ? value.updatedAt : null,
  };
}

/** What following stock needs. */
export interface FollowStockOptions {
  readonly feed: LiveFeed;
  readonly config: ServiceRuntime['config'];
  readonly em: EntityManager;
  readonly log: Logger;
  /** Checked with {@link checkFollowedSkus}. */
  readonly skus: readonly string[];
}

/**
 * The StockLevels of `skus`: each current one first (in the order given), then every newer committed
 * figure. Throws BAD_USER_INPUT for invalid skus before subscribing to anything.
 */
export function followStock(options: FollowStockOptions): Promise<LiveIterator<StockRecord>> {
  checkFollowedSkus(options.skus);
  const skuOf = new Map(options.skus.map((sku) => [stockChannel(options.config, sku), sku]));
  return liveQuery<StockRecord>({
    feed: options.feed,
    channels: [...skuOf.keys()],
    load: () => loadStock(options.em, options.skus),
    fromMessage: (channel, message) => {
      const sku = skuOf.get(channel);
      return sku === undefined ? [] : [parseStockMessage(message, sku)];
    },
    keyOf: (record) => record.sku,
    versionOf: (record) => record.version,
    log: options.log,
  });
}
