/**
 * The four subgraphs of the public federation gateway benchmark (graphql-hive/graphql-gateways-benchmark,
 * `federation/subgraphs/{accounts,inventory,products,reviews}`: Rust, async-graphql), written again
 * with @apollo/subgraph over the same small in-memory data, and the benchmark's k6 query.
 *
 * Two deliberate details:
 *
 * - `users` and `topProducts` take an optional `shop` argument the reference does not have. Without
 *   it (the public query) every id, body and field is the reference's. With it, every key is scoped
 *   as `<shop>:<id>`, so each entity fetch that follows carries different representations: the
 *   `federation-distinct` workload varies `$shop` to make every request, and every subgraph fetch
 *   it causes, differ from those in flight beside it.
 * - `shippingEstimate` is always null, as in the reference: its entity resolver builds the product
 *   from the inventory's own record, which has no price or weight, so the `@requires` fields the
 *   gateway sends are never read. Kept, so responses match what the public k6 check expects.
 */
import { composeServices } from '@apollo/composition';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import { type DocumentNode, parse } from 'graphql';

/** A subgraph's name as in the public benchmark's supergraph. */
export type FederationSubgraphName = 'accounts' | 'inventory' | 'products' | 'reviews';

/** A subgraph: its SDL and resolvers, for `buildSubgraphSchema`. */
export interface FederationSubgraph {
  readonly name: FederationSubgraphName;
  readonly typeDefs: DocumentNode;
  readonly resolvers: GraphQLResolverMap<unknown>;
}

/** `<shop>:<id>` when a shop is given, the reference's bare id otherwise. */
function scoped(shop: string | null, id: string): string {
  return shop === null ? id : `${shop}:${id}`;
}

/** The inverse of {@link scoped}. */
function unscoped(key: string): { shop: string | null; id: string } {
  const at = key.lastIndexOf(':');
  return at < 0 ? { shop: null, id: key } : { shop: key.slice(0, at), id: key.slice(at + 1) };
}

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key", "@external", "@requires", "@provides", "@shareable"])';

// --- accounts -------------------------------------------------------------------------------

const USERS = [
  { id: '1', name: 'Uri Goldshtein', username: 'urigo', birthday: 1234567890 },
  { id: '2', name: 'Dotan Simha', username: 'dotansimha', birthday: 1234567890 },
  { id: '3', name: 'Kamil Kisiela', username: 'kamilkisiela', birthday: 1234567890 },
  { id: '4', name: 'Arda Tanrikulu', username: 'ardatan', birthday: 1234567890 },
  { id: '5', name: 'Gil Gardosh', username: 'gilgardosh', birthday: 1234567890 },
  { id: '6', name: 'Laurin Quast', username: 'laurin', birthday: 1234567890 },
];

function accountByKey(key: string) {
  const { shop, id } = unscoped(key);
  const user = USERS.find((u) => u.id === id);
  return user ? { ...user, id: scoped(shop, user.id) } : null;
}

const accounts: FederationSubgraph = {
  name: 'accounts',
  typeDefs: parse(`${LINK}
    type Query {
      me: User
      user(id: ID!): User
      users(shop: ID): [User]
    }
    type User @key(fields: "id") {
      id: ID!
      name: String
      # Reviews provides it too (Review.author), which Federation 2 allows of shareable fields only.
      username: String @shareable
      birthday: Int
    }`),
  resolvers: {
    Query: {
      me: () => USERS[0],
      user: (_: unknown, { id }: { id: string }) => accountByKey(id),
      users: (_: unknown, { shop }: { shop?: string | null }) => USERS.map((u) => ({ ...u, id: scoped(shop ?? null, u.id) })),
    },
    User: { __resolveReference: (ref: { id: string }) => accountByKey(ref.id) },
  },
};

// --- inventory ------------------------------------------------------------------------------

const IN_STOCK: Readonly<Record<string, boolean>> = { 1: true, 2: false, 3: false, 4: false, 5: true, 6: true, 7: true, 8: false, 9: true };

const inventory: FederationSubgraph = {
  name: 'inventory',
  typeDefs: parse(`${LINK}
    type Product @key(fields: "upc") {
      upc: String!
      weight: Int @external
      price: Int @external
      inStock: Boolean
      shippingEstimate: Int @requires(fields: "price weight")
    }`),
  resolvers: {
    Product: {
      __resolveReference: (ref: { upc: string }) => {
        const inStock = IN_STOCK[unscoped(ref.upc).id];
        // The reference's own record: no price, no weight (see the module comment).
        return inStock === undefined ? null : { upc: ref.upc, inStock, price: null, weight: null };
      },
      shippingEstimate: (product: { price: number | null; weight: number | null }) => {
        if (product.price === null) return null;
        if (product.price > 1000) return 0;
        return product.weight === null ? null : Math.trunc(product.weight / 2);
      },
    },
  },
};

// --- products -------------------------------------------------------------------------------

const PRODUCTS = [
  { upc: '1', name: 'Table', price: 899, weight: 100 },
  { upc: '2', name: 'Couch', price: 1299, weight: 1000 },
  { upc: '3', name: 'Glass', price: 15, weight: 20 },
  { upc: '4', name: 'Chair', price: 499, weight: 100 },
  { upc: '5', name: 'TV', price: 1299, weight: 1000 },
  { upc: '6', name: 'Lamp', price: 6999, weight: 300 },
  { upc: '7', name: 'Grill', price: 3999, weight: 2000 },
  { upc: '8', name: 'Fridge', price: 100000, weight: 6000 },
  { upc: '9', name: 'Sofa', price: 9999, weight: 800 },
];

const products: FederationSubgraph = {
  name: 'products',
  typeDefs: parse(`${LINK}
    type Query {
      topProducts(first: Int = 5, shop: ID): [Product]
    }
    type Product @key(fields: "upc") {
      upc: String!
      name: String
      price: Int
      weight: Int
    }`),
  resolvers: {
    Query: {
      topProducts: (_: unknown, { first, shop }: { first: number; shop?: string | null }) =>
        PRODUCTS.slice(0, Math.max(0, first)).map((p) => ({ ...p, upc: scoped(shop ?? null, p.upc) })),
    },
    Product: {
      __resolveReference: (ref: { upc: string }) => {
        const product = PRODUCTS.find((p) => p.upc === unscoped(ref.upc).id);
        return product ? { ...product, upc: ref.upc } : null;
      },
    },
  },
};

// --- reviews --------------------------------------------------------------------------------

const LOREM =
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.';
const SED_UT =
  'Sed ut perspiciatis unde omnis iste natus error sit voluptatem accusantium doloremque laudantium, totam rem aperiam, eaque ipsa quae ab illo inventore veritatis et quasi architecto beatae vitae dicta sunt explicabo. Nemo enim ipsam voluptatem quia voluptas sit aspernatur aut odit aut fugi';
const SED_QUIA =
  'sed quia consequuntur magni dolores eos qui ratione voluptatem sequi nesciunt. Neque porro quisquam est, qui dolorem ipsum quia dolor sit amet, consectetur, adipisci velit, sed quia non numquam eius modi tempora incidunt ut labore et dolore magnam aliquam quaerat voluptatem.';
const UT_ENIM =
  'Ut enim ad minima veniam, quis nostrum exercitationem ullam corporis suscipit laboriosam, nisi ut aliquid ex ea commodi consequatur? Quis autem';
const AT_VERO =
  'At vero eos et accusamus et iusto odio dignissimos ducimus qui blanditiis praesentium voluptatum deleniti atque corrupti quos dolores et quas molestias excepturi sint occaecati cupiditate non provident, similique sunt in culpa qui officia deserunt mollitia animi, id est laborum et dolorum fuga. Et harum quidem rerum facilis est et expedita distinctio. Nam libero tempore, cum soluta nobis est eligendi optio cumque nihil impedit quo minus id quod maxime placeat facere possimus, omnis voluptas assumenda est, omnis dolor repellendus. Temporibus autem quibusdam et aut officiis debitis aut rerum necessitatibus saepe eveniet ut et voluptates repudiandae sint et molestiae non recusandae. Itaque earum rerum hic tenetur a sapiente delectus, ut aut reiciendis voluptatibus maiores alias consequatur aut perferendis doloribus asperiores repellat.';

const REVIEWS = [
  { id: '1', body: LOREM, upc: '1' },
  { id: '2', body: SED_UT, upc: '1' },
  { id: '3', body: SED_QUIA, upc: '1' },
  { id: '4', body: UT_ENIM, upc: '1' },
  { id: '5', body: LOREM, upc: '2' },
  { id: '6', body: SED_UT, upc: '2' },
  { id: '7', body: SED_QUIA, upc: '2' },
  { id: '8', body: UT_ENIM, upc: '2' },
  { id: '9', body: UT_ENIM, upc: '3' },
  { id: '10', body: UT_ENIM, upc: '4' },
  { id: '11', body: AT_VERO, upc: '4' },
];

interface ReviewRow {
  readonly id: string;
  readonly body: string;
  readonly upc: string;
  readonly shop: string | null;
}

const reviewsOf = (shop: string | null, rows: readonly (typeof REVIEWS)[number][]): ReviewRow[] => rows.map((r) => ({ ...r, shop }));

const reviews: FederationSubgraph = {
  name: 'reviews',
  typeDefs: parse(`${LINK}
    type Review @key(fields: "id") {
      id: ID!
      body: String
      product: Product
      author: User @provides(fields: "username")
    }
    type User @key(fields: "id") {
      id: ID!
      username: String @external
      reviews: [Review]
    }
    type Product @key(fields: "upc") {
      upc: String!
      reviews: [Review]
    }`),
  resolvers: {
    Review: {
      __resolveReference: (ref: { id: string }) => {
        const { shop, id } = unscoped(ref.id);
        const review = REVIEWS.find((r) => r.id === id);
        return review ? { ...review, shop } : null;
      },
      id: (review: ReviewRow) => scoped(review.shop, review.id),
      product: (review: ReviewRow) => ({ upc: scoped(review.shop, review.upc) }),
      // The reference: every review's author is user 1, with the first two reviews.
      author: (review: ReviewRow) => ({ id: scoped(review.shop, '1'), username: 'urigo', reviews: reviewsOf(review.shop, REVIEWS.slice(0, 2)) }),
    },
    User: {
      __resolveReference: (ref: { id: string }) => ({ id: ref.id, username: 'user', reviews: reviewsOf(unscoped(ref.id).shop, REVIEWS.slice(0, 2)) }),
    },
    Product: {
      __resolveReference: (ref: { upc: string }) => ({ upc: ref.upc }),
      reviews: (product: { upc: string }) => {
        const { shop, id } = unscoped(product.upc);
        return reviewsOf(
          shop,
          REVIEWS.filter((r) => r.upc === id),
        );
      },
    },
  },
};

/** The four subgraphs, in the public benchmark's order. */
export const FEDERATION_SUBGRAPHS: readonly FederationSubgraph[] = [accounts, inventory, products, reviews];

/**
 * Composes the four into a supergraph routed to `urls` (subgraph name → http URL). Composed when
 * the bench starts rather than checked in: the routing URLs are the replay server's, on ports
 * picked for the run.
 */
export function composeFederationSupergraph(urls: Readonly<Record<FederationSubgraphName, string>>): string {
  const result = composeServices(FEDERATION_SUBGRAPHS.map((s) => ({ name: s.name, url: urls[s.name], typeDefs: s.typeDefs })));
  if (result.errors?.length || !result.supergraphSdl) {
    throw new Error(`composing the federation benchmark's subgraphs failed:\n${(result.errors ?? []).map((e) => `- ${e.message}`).join('\n')}`);
  }
  return result.supergraphSdl;
}

/** The public benchmark's k6 query (k6.js `graphqlRequest`), verbatim. */
export const FEDERATION_QUERY = `fragment User on User {
      id
      username
      name
    }

    fragment Review on Review {
      id
      body
    }

    fragment Product on Product {
      inStock
      name
      price
      shippingEstimate
      upc
      weight
    }

    query TestQuery {
      users {
        ...User
        reviews {
          ...Review
          product {
            ...Product
            reviews {
              ...Review
              author {
                ...User
                reviews {
                  ...Review
                  product {
                    ...Product
                  }
                }
              }
            }
          }
        }
      }
      topProducts {
        ...Product
        reviews {
          ...Review
          author {
            ...User
            reviews {
              ...Review
              product {
                ...Product
              }
            }
          }
        }
      }
    }`;

/** Replaces the one occurrence of `from` in `text`; a second or missing one is a bug here. */
function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`expected exactly one "${from}" in the federation query`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/** {@link FEDERATION_QUERY} with `$shop` passed to its two root fields: same shape, distinct keys per shop. */
export const FEDERATION_DISTINCT_QUERY = [
  ['query TestQuery {', 'query TestQuery($shop: ID) {'],
  ['users {', 'users(shop: $shop) {'],
  ['topProducts {', 'topProducts(shop: $shop) {'],
].reduce((text, [from, to]) => replaceOnce(text, from, to), FEDERATION_QUERY);

/** The `$shop` values the distinct workload cycles over: shop-0001 ... */
export function shops(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `shop-${String(i + 1).padStart(4, '0')}`);
}
