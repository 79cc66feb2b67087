import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { type ServiceModule, type ServiceRuntime, registerCacheMetrics } from '@swiftcart/platform';
import { Catalogue, projectCatalogue } from './catalogue.ts';
import type { ProductContext } from './context.ts';
import { Product } from './entities.ts';
import { migrations } from './migrations.ts';
import { productResolvers } from './resolvers.ts';
import { type ProductSettings, productSettings } from './settings.ts';

const catalogues = new WeakMap<ServiceRuntime, Catalogue>();

/** One catalogue (and so one set of cache stats) per running service. */
function catalogueOf(runtime: ServiceRuntime<ProductSettings>): Catalogue {
  let catalogue = catalogues.get(runtime);
  if (!catalogue) catalogues.set(runtime, (catalogue = new Catalogue(runtime)));
  return catalogue;
}

/** The product service: the catalogue and its admin mutations. */
export const productService: ServiceModule<ProductContext, ProductSettings> = {
  name: 'product',
  settings: productSettings,
  publishesEvents: true,
  entities: [Product],
  migrations,
  project: (runtime) => projectCatalogue(catalogueOf(runtime)),
  metrics: (runtime, registry) => {
    const catalogue = catalogueOf(runtime);
    registerCacheMetrics(registry, { product: catalogue.products, 'product-pages': catalogue.pages });
  },
  resolvers: (runtime) => productResolvers(catalogueOf(runtime)) as GraphQLResolverMap<ProductContext>,
  context: (runtime, base) => {
    const catalogue = catalogueOf(runtime);
    return {
      ...base,
      products: new DataLoader(async (skus) => {
        const found = await catalogue.findMany(base.em, skus);
        return skus.map((sku) => found.get(sku) ?? null);
      }),
    };
  },
};
