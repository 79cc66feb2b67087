import { Migration, type NamedMigration } from '@swiftcart/platform';

class CreateAnalytics extends Migration {
  override up(): void {
    // The generations of the figures (ADR 0023): queries read the CURRENT one; a rebuild fills a
    // new one beside it (BUILDING, then FOLLOWING the live events too) and swaps it in.
    this.addSql(`
      create table analytics_generation (
        id integer primary key check (id >= 1),
        state text not null check (state in ('BUILDING', 'FOLLOWING', 'CURRENT', 'RETIRED')),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    // Exactly one generation is read, and at most one is being rebuilt at a time.
    this.addSql(`create unique index analytics_generation_one_current on analytics_generation ((true)) where state = 'CURRENT'`);
    this.addSql(`create unique index analytics_generation_one_rebuild on analytics_generation ((true)) where state in ('BUILDING', 'FOLLOWING')`);
    this.addSql(`insert into analytics_generation (id, state) values (1, 'CURRENT')`);

    // Facts, not figures: the same in every generation, so the live consumer and a rebuild share
    // them, and an event a rebuild has not reached yet still finds its order (ADR 0023).
    this.addSql(`
      create table analytics_order (
        order_id uuid primary key,
        currency text not null check (currency ~ '^[A-Z]{3}$'),
        total_amount bigint not null check (total_amount >= 0),
        lines jsonb not null check (jsonb_typeof(lines) = 'array'),
        placed_at timestamptz not null
      )`);

    // An event counted into a generation is never counted into it again, whichever consumer
    // (the live one, a rebuild) brings it. occurred_at and counted_at measure the counting lag.
    this.addSql(`
      create table analytics_event (
        generation integer not null,
        event_id uuid not null,
        event_type text not null,
        occurred_at timestamptz not null,
        counted_at timestamptz not null default clock_timestamp(),
        primary key (generation, event_id)
      )`);
    // Retention deletes the old records by counted_at (retention.ts).
    this.addSql('create index analytics_event_counted_at_idx on analytics_event (counted_at)');

    this.addSql(`
      create table sales_bucket (
        generation integer not null,
        granularity text not null check (granularity in ('HOUR', 'DAY')),
        currency text not null check (currency ~ '^[A-Z]{3}$'),
        start timestamptz not null,
        orders_placed integer not null default 0 check (orders_placed >= 0),
        orders_confirmed integer not null default 0 check (orders_confirmed >= 0),
        orders_cancelled integer not null default 0 check (orders_cancelled >= 0),
        orders_rejected integer not null default 0 check (orders_rejected >= 0),
        revenue bigint not null default 0 check (revenue >= 0),
        refunds bigint not null default 0 check (refunds >= 0),
        units_sold bigint not null default 0 check (units_sold >= 0),
        version integer not null check (version >= 0),
        updated_at timestamptz not null default now(),
        -- salesSummary reads a range of one granularity and currency: the key's order serves it.
        primary key (generation, granularity, currency, start)
      )`);

    this.addSql(`
      create table product_sales (
        generation integer not null,
        currency text not null check (currency ~ '^[A-Z]{3}$'),
        hour timestamptz not null,
        sku text not null check (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
        units_sold bigint not null check (units_sold >= 0),
        revenue bigint not null check (revenue >= 0),
        -- topProducts sums a range of hours of one currency.
        primary key (generation, currency, hour, sku)
      )`);
  }
}

/** The analytics database's migrations, in order. */
export const migrations: readonly NamedMigration[] = [{ name: '0001_create_analytics', class: CreateAnalytics }];
