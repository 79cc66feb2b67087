/**
 * Loads the demo data: `npm run seed` (npm start runs it). 1,000 products with stock, and the demo
 * customers' profiles and addresses, the same on every machine, inserted only where missing so
 * re-running it changes nothing.
 */
import { createLogger, enqueueEvents, isMain, loadConfig, openRuntime, type Config, type EntityManager } from '@swiftcart/platform';
import { Catalogue, productEvent, seedProducts, type SeedProduct } from '../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../subgraphs/inventory/src/stock.ts';
import { type SeedCustomer, seedCustomers } from '../subgraphs/customer/src/customers.ts';
import { loadServiceModule } from './services.ts';

/** How many products the demo catalogue has. */
export const SEED_PRODUCT_COUNT = 1_000;

const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Everyday', 'Handmade', 'Nordic', 'Pocket', 'Pro', 'Rugged', 'Smart', 'Vintage'];
const NOUNS = [
  'Backpack',
  'Blender',
  'Candle',
  'Desk Lamp',
  'Headphones',
  'Kettle',
  'Mug',
  'Notebook',
  'Plant Pot',
  'Sneakers',
  'Teapot',
  'Water Bottle',
  'Wool Scarf',
  'Yoga Mat',
];
const COLOURS = ['Black', 'Blue', 'Green', 'Grey', 'Orange', 'Red', 'Sand', 'White'];

/** The seed sku of product number `n` (1-based): SKU-0001 ... SKU-1000. */
export function seedSku(n: number): string {
  return `SKU-${String(n).padStart(4, '0')}`;
}

/** The deterministic demo catalogue: product n always has the same name, price and stock. */
export function seedCatalogue(count = SEED_PRODUCT_COUNT): { products: SeedProduct[]; stock: { sku: string; onHand: number }[] } {
  const products: SeedProduct[] = [];
  const stock: { sku: string; onHand: number }[] = [];
  for (let n = 1; n <= count; n++) {
    const sku = seedSku(n);
    const name = `${ADJECTIVES[n % ADJECTIVES.length]} ${NOUNS[(n * 7) % NOUNS.length]}, ${COLOURS[(n * 3) % COLOURS.length]}`;
    products.push({ sku, name, description: `${name}: demo catalogue item ${n}.`, priceAmount: 499 + ((n * 137) % 19_500), currency: 'EUR' });
    stock.push({ sku, onHand: 10 + ((n * 31) % 491) });
  }
  return { products, stock };
}

/** The demo customers (the storefront's sign-in offers them), each with a profile and addresses. */
export const SEED_CUSTOMERS: readonly SeedCustomer[] = [
  {
    id: 'alice',
    profile: { name: 'Alice Liddell', email: 'alice@example.com', phone: '+4930123456', notificationPreferences: { sms: true } },
    addresses: [
      { name: 'Alice Liddell', line1: 'Hauptstraße 1', city: 'Berlin', postalCode: '10115', country: 'DE' },
      { name: 'Alice Liddell', line1: 'Rue de Rivoli 10', line2: 'Bureau 4', city: 'Paris', postalCode: '75001', country: 'FR' },
    ],
  },
  {
    id: 'bob',
    profile: { name: 'Bob Builder', email: 'bob@example.com' },
    addresses: [{ name: 'Bob Builder', line1: '1 Main Street', city: 'Boston', postalCode: '02108', country: 'US' }],
  },
  {
    id: 'carol',
    profile: { name: 'Carol Danvers', email: 'carol@example.com', notificationPreferences: { email: false } },
    addresses: [{ name: 'Carol Danvers', line1: 'Kalverstraat 5', city: 'Amsterdam', postalCode: '1012 NX', country: 'NL' }],
  },
];

/** Seeds the product, inventory and customer databases; returns how many rows were new. */
export async function seed(config: Config): Promise<{ products: number; stock: number; reannounced: number; customers: number }> {
  const { products, stock } = seedCatalogue();
  await using product = await openRuntime(await loadServiceModule('product'), { config });
  await using inventory = await openRuntime(await loadServiceModule('inventory'), { config });
  await using order = await openRuntime(await loadServiceModule('order'), { config });
  await using customer = await openRuntime(await loadServiceModule('customer'), { config });
  await using cart = await openRuntime(await loadServiceModule('cart'), { config });
  const insertedProducts = await seedProducts(product.runtime.db.fork(), products);
  const insertedStock = await seedStock(inventory.runtime.db.fork(), stock);
  // Listing pages cached before the seed would not show the new products.
  if (insertedProducts > 0) await new Catalogue(product.runtime).pages.invalidate(['all']);
  const reannounced = await reannounceMissingPrices(
    product.runtime.db.fork(),
    [order.runtime.db.fork(), cart.runtime.db.fork()],
    products.map((p) => p.sku),
  );
  const customers = await seedCustomers(customer.runtime.db.fork(), SEED_CUSTOMERS);
  return { products: insertedProducts, stock: insertedStock, reannounced, customers };
}

/**
 * A database seeded before the product service published its events (or a price replica created
 * after the events left Kafka) has products that a price replica (the order service's, the cart
 * service's) never heard of, so they cannot be ordered or put in a cart. This announces those again
 * (ProductCreated at their current version, through the outbox); a replica ignores anything it
 * already has. A development aid: production replicas are fed by the events alone.
 */
async function reannounceMissingPrices(productEm: EntityManager, replicas: readonly EntityManager[], skus: readonly string[]): Promise<number> {
  const missing = new Set<string>();
  for (const replica of replicas) {
    const known = await replica.execute<{ sku: string }[]>('select sku from catalogue_price where sku in (select jsonb_array_elements_text(?::jsonb))', [
      JSON.stringify(skus),
    ]);
    const have = new Set(known.map((r) => r.sku));
    for (const sku of skus) if (!have.has(sku)) missing.add(sku);
  }
  if (missing.size === 0) return 0;
  return productEm.transactional(async (tx) => {
    const rows = await tx.execute<{ sku: string; name: string; price_amount: number; currency: string; status: 'ACTIVE' | 'DISCONTINUED'; version: number }[]>(
      'select sku, name, price_amount, currency, status, version from product where sku in (select jsonb_array_elements_text(?::jsonb))',
      [JSON.stringify([...missing])],
    );
    await enqueueEvents(
      tx,
      rows.map((r) =>
        productEvent('ProductCreated', { sku: r.sku, name: r.name, priceAmount: r.price_amount, currency: r.currency, status: r.status, version: r.version }),
      ),
    );
    return rows.length;
  });
}

if (isMain(import.meta.url)) {
  const log = createLogger('seed', 'info');
  try {
    const inserted = await seed(loadConfig());
    log.info({ inserted, catalogue: SEED_PRODUCT_COUNT }, 'seed catalogue loaded');
  } catch (error) {
    log.fatal({ err: error }, 'seed failed');
    process.exit(1);
  }
}
