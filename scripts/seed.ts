/**
 * Loads the demo catalogue: `npm run seed` (npm start runs it). 1,000 products with stock,
 * the same on every machine, inserted only where missing so re-running it changes nothing.
 */
import { createLogger, isMain, loadConfig, openRuntime, type Config } from '@swiftcart/platform';
import { Catalogue, seedProducts, type SeedProduct } from '../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../subgraphs/inventory/src/stock.ts';
import { loadServiceModule } from './services.ts';

/** How many products the demo catalogue has. */
export const SEED_PRODUCT_COUNT = 1_000;

const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Everyday', 'Handmade', 'Nordic', 'Pocket', 'Pro', 'Rugged', 'Smart', 'Vintage'];
const NOUNS = ['Backpack', 'Blender', 'Candle', 'Desk Lamp', 'Headphones', 'Kettle', 'Mug', 'Notebook', 'Plant Pot', 'Sneakers', 'Teapot', 'Water Bottle', 'Wool Scarf', 'Yoga Mat'];
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

/** Seeds the product and inventory databases; returns how many rows were new. */
export async function seed(config: Config): Promise<{ products: number; stock: number }> {
  const { products, stock } = seedCatalogue();
  await using product = await openRuntime(await loadServiceModule('product'), { config });
  await using inventory = await openRuntime(await loadServiceModule('inventory'), { config });
  const insertedProducts = await seedProducts(product.runtime.db.fork(), products);
  const insertedStock = await seedStock(inventory.runtime.db.fork(), stock);
  // Listing pages cached before the seed would not show the new products.
  if (insertedProducts > 0) await new Catalogue(product.runtime).pages.invalidate(['all']);
  return { products: insertedProducts, stock: insertedStock };
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
