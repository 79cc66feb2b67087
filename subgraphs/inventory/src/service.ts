import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { ServiceModule, ServiceRuntime } from '@swiftcart/platform';
import type { InventoryContext } from './context.ts';
import { Reservation, Stock, StockAdjustment } from './entities.ts';
import { migrations } from './migrations.ts';
import { orderEventsConsumer } from './order-events.ts';
import { inventoryResolvers } from './resolvers.ts';
import { StockLedger, loadStock, projectStock } from './stock.ts';

const ledgers = new WeakMap<ServiceRuntime, StockLedger>();

/** One ledger per running service. */
export function ledgerOf(runtime: ServiceRuntime): StockLedger {
  let ledger = ledgers.get(runtime);
  if (!ledger) ledgers.set(runtime, (ledger = new StockLedger(runtime)));
  return ledger;
}

/**
 * The inventory service: stock per sku, its admin adjustments and its live figure in Redis, and
 * the order saga's reservations (it consumes `order.events.v1`, publishes `inventory.events.v1`).
 */
export const inventoryService: ServiceModule<InventoryContext> = {
  name: 'inventory',
  entities: [Stock, StockAdjustment, Reservation],
  migrations,
  publishesEvents: true,
  project: (runtime) => projectStock(ledgerOf(runtime)),
  consumers: (runtime) => [orderEventsConsumer(ledgerOf(runtime))],
  resolvers: (runtime) => inventoryResolvers(ledgerOf(runtime), runtime) as GraphQLResolverMap<InventoryContext>,
  context: (_runtime, base) => ({
    ...base,
    stock: new DataLoader((skus) => loadStock(base.em, skus)),
  }),
};
