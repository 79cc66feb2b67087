import { defineEntity, p } from '@mikro-orm/core';

/** Whether a product can be ordered; mirrors the GraphQL enum. */
export const PRODUCT_STATUSES = ['ACTIVE', 'DISCONTINUED'] as const;
export type ProductStatus = (typeof PRODUCT_STATUSES)[number];

/** A catalogue row. Money is stored as integer minor units beside its currency. */
export const Product = defineEntity({
  name: 'Product',
  tableName: 'product',
  properties: {
    sku: p.string().primary(),
    name: p.string(),
    description: p.text(),
    priceAmount: p.integer(),
    currency: p.string(),
    status: p.string().$type<ProductStatus>(),
    version: p.integer().version(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** A product row as MikroORM hands it out. */
export type ProductEntity = InstanceType<typeof Product.class>;

/**
 * A product as the API and the cache see it: plain JSON in the GraphQL shape, so a cached value and
 * a freshly loaded one are indistinguishable to resolvers.
 */
export interface ProductRecord {
  readonly sku: string;
  readonly name: string;
  readonly description: string;
  readonly price: { readonly amount: number; readonly currency: string };
  readonly status: ProductStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** Converts a row to its API shape. */
export function toRecord(row: ProductEntity): ProductRecord {
  return {
    sku: row.sku,
    name: row.name,
    description: row.description,
    price: { amount: row.priceAmount, currency: row.currency },
    status: row.status,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
