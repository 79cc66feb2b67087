import { createHash } from 'node:crypto';
import { LockMode, UniqueConstraintViolationException, type FilterQuery } from '@mikro-orm/core';
import {
  CacheAside,
  ErrorCode,
  apiError,
  badInput,
  checkSku,
  decodeCursor,
  enqueueEvents,
  newEvent,
  notFound,
  pageSize,
  toConnection,
  type EntityManager,
  type EventTypeOf,
  type OutboxProjector,
  type ServiceRuntime,
} from '@swiftcart/platform';
import { PRODUCT_STATUSES, Product, toRecord, type ProductEntity, type ProductRecord, type ProductStatus } from './entities.ts';
import type { ProductSettings } from './settings.ts';

const CURRENCY_PATTERN = /^[A-Z]{3}$/;
/** Every list page shares one generation, so any catalogue change invalidates all cached pages. */
const ALL_PAGES = 'all';

/** Money as clients send it. */
export interface MoneyInput {
  readonly amount: number;
  readonly currency: string;
}
/** A new product as clients send it. */
export interface CreateProductInput {
  readonly sku: string;
  readonly name: string;
  readonly description?: string | null;
  readonly price: MoneyInput;
}
/** Changes to a product as clients send them. */
export interface UpdateProductInput {
  readonly name?: string | null;
  readonly description?: string | null;
  readonly price?: MoneyInput | null;
}
/** Conditions of a product listing. */
export interface ProductFilter {
  readonly search?: string | null;
  readonly status?: ProductStatus | null;
  readonly minPrice?: number | null;
  readonly maxPrice?: number | null;
}

interface CachedPage {
  readonly rows: ProductRecord[];
  readonly totalCount: number;
}

/** The catalogue's events (schema/events/Product*.v1.json). */
export type ProductEventType = EventTypeOf<'product'>;

/** What a product event says about a row, at the row's version. */
interface ProductFacts {
  readonly sku: string;
  readonly name: string;
  readonly priceAmount: number;
  readonly currency: string;
  readonly status: ProductStatus;
  readonly version: number;
}

/** The event announcing `row`'s new state; consumers keep the highest `version` they have seen. */
export function productEvent(type: ProductEventType, row: ProductFacts) {
  if (type === 'ProductDiscontinued') return newEvent(type, { sku: row.sku, version: row.version });
  return newEvent(type, { sku: row.sku, name: row.name, price: { amount: row.priceAmount, currency: row.currency }, status: row.status, version: row.version });
}

function checkName(name: string, field: string): void {
  if (name.trim().length === 0 || name.length > 200) throw badInput(`"${field}" must be 1 to 200 characters`, field);
}

function checkDescription(description: string, field: string): void {
  if (description.length > 5000) throw badInput(`"${field}" must be at most 5,000 characters`, field);
}

function checkMoney(money: MoneyInput, field: string): void {
  if (!Number.isInteger(money.amount) || money.amount < 0) {
    throw badInput(`"${field}.amount" must be zero or more minor units, got ${money.amount}`, `${field}.amount`);
  }
  if (!CURRENCY_PATTERN.test(money.currency)) {
    throw badInput(`"${field}.currency" must be an ISO-4217 code such as EUR, got "${money.currency}"`, `${field}.currency`);
  }
}

/** Validates a new product; throws the first problem as BAD_USER_INPUT. */
export function checkCreate(input: CreateProductInput): void {
  checkSku(input.sku, 'input.sku');
  checkName(input.name, 'input.name');
  checkDescription(input.description ?? '', 'input.description');
  checkMoney(input.price, 'input.price');
}

/** Validates changes to a product; throws the first problem as BAD_USER_INPUT. */
export function checkUpdate(input: UpdateProductInput): void {
  if (input.name != null) checkName(input.name, 'input.name');
  if (input.description != null) checkDescription(input.description, 'input.description');
  if (input.price != null) checkMoney(input.price, 'input.price');
  if (input.name == null && input.description == null && input.price == null) {
    throw badInput('"input" must change at least one of name, description or price', 'input');
  }
}

function checkFilter(filter: ProductFilter): void {
  for (const field of ['minPrice', 'maxPrice'] as const) {
    const value = filter[field];
    if (value != null && (!Number.isInteger(value) || value < 0)) throw badInput(`"filter.${field}" must be zero or more`, `filter.${field}`);
  }
  if (filter.minPrice != null && filter.maxPrice != null && filter.minPrice > filter.maxPrice) {
    throw badInput('"filter.minPrice" must not exceed "filter.maxPrice"', 'filter.minPrice');
  }
  if (filter.search != null && filter.search.length > 200) throw badInput('"filter.search" must be at most 200 characters', 'filter.search');
}

function whereOf(filter: ProductFilter, after: string | null): FilterQuery<ProductEntity> {
  const where: Record<string, unknown>[] = [];
  if (after !== null) where.push({ sku: { $gt: after } });
  if (filter.status) where.push({ status: filter.status });
  if (filter.minPrice != null) where.push({ priceAmount: { $gte: filter.minPrice } });
  if (filter.maxPrice != null) where.push({ priceAmount: { $lte: filter.maxPrice } });
  if (filter.search) {
    const pattern = `%${filter.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    where.push({ $or: [{ name: { $ilike: pattern } }, { sku: { $ilike: pattern } }] });
  }
  return (where.length ? { $and: where } : {}) as FilterQuery<ProductEntity>;
}

/** The product catalogue: reads through the Redis cache, writes to PostgreSQL and then invalidate. */
export class Catalogue {
  /** One cached value per sku. */
  readonly products: CacheAside<ProductRecord>;
  /** Cached listing pages, all behind one generation. */
  readonly pages: CacheAside<CachedPage>;

  constructor(runtime: ServiceRuntime<ProductSettings>) {
    const ttlSeconds = runtime.settings.cacheTtlSeconds;
    this.products = new CacheAside(runtime.redis, { namespace: 'product', ttlSeconds, log: runtime.log });
    this.pages = new CacheAside(runtime.redis, { namespace: 'product-pages', ttlSeconds, log: runtime.log, generationOf: () => ALL_PAGES });
  }

  /** The products with these skus, in one cache round trip and at most one SQL query. */
  async findMany(em: EntityManager, skus: readonly string[]): Promise<Map<string, ProductRecord | null>> {
    return this.products.getMany(skus, async (missing) => {
      const rows = await em.find(Product, { sku: { $in: [...missing] } });
      return new Map(rows.map((row) => [row.sku, toRecord(row)]));
    });
  }

  /** A page of products ordered by sku. */
  async list(em: EntityManager, args: { first?: number | null; after?: string | null; filter?: ProductFilter | null }) {
    const size = pageSize(args.first);
    const after = args.after == null ? null : decodeCursor(args.after);
    const filter = args.filter ?? {};
    checkFilter(filter);
    const key = createHash('sha256')
      .update(JSON.stringify([size, after, filter.search ?? null, filter.status ?? null, filter.minPrice ?? null, filter.maxPrice ?? null]))
      .digest('base64url');
    const page = await this.pages.get(key, async () => {
      const [rows, totalCount] = await Promise.all([
        em.fork().find(Product, whereOf(filter, after), { orderBy: { sku: 'asc' }, limit: size + 1 }),
        em.fork().count(Product, whereOf(filter, null)),
      ]);
      return { rows: rows.map(toRecord), totalCount };
    });
    return toConnection(page!.rows, size, (p) => p.sku, page!.totalCount);
  }

  /** Adds a product; CONFLICT when the sku is taken. */
  async create(em: EntityManager, input: CreateProductInput): Promise<ProductRecord> {
    checkCreate(input);
    let record: ProductRecord;
    try {
      record = await em.transactional(async (tx) => {
        const row = tx.create(Product, {
          sku: input.sku,
          name: input.name.trim(),
          description: input.description ?? '',
          priceAmount: input.price.amount,
          currency: input.price.currency,
          status: 'ACTIVE',
        });
        await tx.flush();
        await enqueueEvents(tx, [productEvent('ProductCreated', row)]);
        return toRecord(row);
      });
    } catch (error) {
      if (error instanceof UniqueConstraintViolationException) {
        throw apiError(ErrorCode.Conflict, `Product "${input.sku}" already exists`, { field: 'input.sku' });
      }
      throw error;
    }
    await this.#invalidate(input.sku);
    return record;
  }

  /** Changes a product under a row lock; NOT_FOUND for an unknown sku. */
  async update(em: EntityManager, sku: string, input: UpdateProductInput): Promise<ProductRecord> {
    checkSku(sku);
    checkUpdate(input);
    return this.#change(em, sku, 'ProductUpdated', (row) => {
      if (input.name != null) row.name = input.name.trim();
      if (input.description != null) row.description = input.description;
      if (input.price != null) {
        row.priceAmount = input.price.amount;
        row.currency = input.price.currency;
      }
    });
  }

  /** Takes a product off sale; idempotent. */
  async discontinue(em: EntityManager, sku: string): Promise<ProductRecord> {
    checkSku(sku);
    return this.#change(em, sku, 'ProductDiscontinued', (row) => {
      row.status = 'DISCONTINUED';
    });
  }

  async #change(em: EntityManager, sku: string, type: ProductEventType, apply: (row: ProductEntity) => void): Promise<ProductRecord> {
    const record = await em.transactional(async (tx) => {
      const row = await tx.findOne(Product, { sku }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!row) throw notFound('Product', sku);
      const before = row.version;
      apply(row);
      await tx.flush();
      // A change that changed nothing (discontinuing twice) keeps its version and says nothing.
      if (row.version !== before) await enqueueEvents(tx, [productEvent(type, row)]);
      return toRecord(row);
    });
    await this.#invalidate(sku);
    return record;
  }

  /** Runs after commit: a reader can then only ever load the new row. */
  async #invalidate(sku: string): Promise<void> {
    await this.invalidate([sku]);
  }

  /**
   * Drops the cached products and every cached page. Called after each write commits, and again by
   * the outbox relay for every product event it published ({@link projectCatalogue}), so a write
   * whose process died before its own invalidation is not served stale from the cache for long.
   */
  async invalidate(skus: readonly string[]): Promise<void> {
    await Promise.all([this.products.invalidate(skus), this.pages.invalidate([ALL_PAGES])]);
  }
}

/** Product's outbox projector: invalidates the cache for the products of every event the relay published (ADR 0016). */
export function projectCatalogue(catalogue: Catalogue): OutboxProjector {
  return async (rows) => {
    const skus = [...new Set(rows.filter((row) => row.published && row.type.startsWith('Product')).map((row) => row.aggregateId))];
    if (skus.length) await catalogue.invalidate(skus);
  };
}

export { PRODUCT_STATUSES };

/** A product row for {@link seedProducts}. */
export interface SeedProduct {
  readonly sku: string;
  readonly name: string;
  readonly description: string;
  readonly priceAmount: number;
  readonly currency: string;
}

/**
 * Inserts products that do not exist yet, in batches, and returns how many were inserted. Existing
 * skus are left untouched so that re-seeding never overwrites an admin's change.
 */
export async function seedProducts(em: EntityManager, rows: readonly SeedProduct[]): Promise<number> {
  for (const row of rows)
    checkCreate({ sku: row.sku, name: row.name, description: row.description, price: { amount: row.priceAmount, currency: row.currency } });
  let inserted = 0;
  for (let i = 0; i < rows.length; i += 500) {
    const batch = rows.slice(i, i + 500);
    // The batch travels as one JSON parameter (MikroORM inlines array parameters as literals), and
    // the inserted rows are announced in the same transaction, like any other new product.
    inserted += await em.transactional(async (tx) => {
      const created = await tx.execute<{ sku: string; name: string; price_amount: number; currency: string; status: ProductStatus; version: number }[]>(
        `insert into product (sku, name, description, price_amount, currency)
         select sku, name, description, "priceAmount", currency
         from jsonb_to_recordset(?::jsonb) as r(sku text, name text, description text, "priceAmount" int, currency text)
         on conflict (sku) do nothing returning sku, name, price_amount, currency, status, version`,
        [JSON.stringify(batch)],
      );
      await enqueueEvents(
        tx,
        created.map((r) =>
          productEvent('ProductCreated', { sku: r.sku, name: r.name, priceAmount: r.price_amount, currency: r.currency, status: r.status, version: r.version }),
        ),
      );
      return created.length;
    });
  }
  return inserted;
}
