import { requireRole } from '@swiftcart/platform';
import type { Resolvers } from './generated/resolvers.ts';
import type { Catalogue } from './catalogue.ts';

/** The product subgraph's resolvers. `product(sku)` and `__resolveReference` share one lookup. */
export function productResolvers(catalogue: Catalogue): Resolvers {
  return {
    Query: {
      product: (_, { sku }, ctx) => ctx.products.load(sku),
      products: (_, args, ctx) => catalogue.list(ctx.em, args),
    },
    Mutation: {
      createProduct: (_, { input }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return catalogue.create(ctx.em, input);
      },
      updateProduct: (_, { sku, input }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return catalogue.update(ctx.em, sku, input);
      },
      discontinueProduct: (_, { sku }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return catalogue.discontinue(ctx.em, sku);
      },
    },
    Product: {
      __resolveReference: (reference, ctx) => ctx.products.load(reference.sku),
    },
  };
}
