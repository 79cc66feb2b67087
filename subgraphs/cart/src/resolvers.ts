import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { liveQuery, requireOrderAccess, type PeerClient, type ServiceRuntime } from '@swiftcart/platform';
import type { Resolvers } from './generated/resolvers.ts';
import type { CartContext } from './context.ts';
import type { CartSettings } from './settings.ts';
import type { CartStore } from './store.ts';
import { addToCart, cartWarnings, checkout, loadCart, removeFromCart, updateCartItem, type CartView } from './carts.ts';
import type { StockReader } from './stock.ts';

/** What the resolvers share for the life of the service. */
export interface CartServiceDeps {
  readonly runtime: ServiceRuntime<CartSettings>;
  readonly store: CartStore;
  readonly orders: PeerClient;
  readonly stock: StockReader;
}

const WHAT = 'your cart';

/** Whether the operation selects `name` on the resolved field's result (through fragments too). */
function selects(info: GraphQLResolveInfo, name: string): boolean {
  const visit = (set: SelectionSetNode | undefined): boolean =>
    (set?.selections ?? []).some((selection) => {
      if (selection.kind === Kind.FIELD) return selection.name.value === name;
      if (selection.kind === Kind.INLINE_FRAGMENT) return visit(selection.selectionSet);
      return visit(info.fragments[selection.name.value]?.selectionSet);
    });
  return info.fieldNodes.some((node) => visit(node.selectionSet));
}

/** The cart subgraph's resolvers. */
export function cartResolvers({ runtime, store, orders, stock }: CartServiceDeps): Resolvers {
  const settings = runtime.settings;
  const deps = (ctx: CartContext) => ({ store, em: ctx.em, settings });
  /** The cart the caller asked for, its stock asked for at once when the operation wants its warnings. */
  const answer = (ctx: CartContext, info: GraphQLResolveInfo, customerId: string) =>
    loadCart(deps(ctx), customerId, selects(info, 'warnings') ? stock : undefined);
  /** Runs a change for the caller and answers the cart after it. */
  const change =
    <A>(run: (d: ReturnType<typeof deps>, customerId: string, args: A) => Promise<void>) =>
    async (_: unknown, args: A, ctx: CartContext, info: GraphQLResolveInfo): Promise<CartView> => {
      const customerId = requireOrderAccess(ctx.viewer, WHAT);
      await run(deps(ctx), customerId, args);
      return answer(ctx, info, customerId);
    };
  return {
    Query: {
      myCart: (_, _args, ctx, info) => answer(ctx, info, requireOrderAccess(ctx.viewer, WHAT)),
    },
    Mutation: {
      addToCart: change((d, customerId, { sku, quantity }: { sku: string; quantity: number }) => addToCart(d, customerId, sku, quantity)),
      updateCartItem: change((d, customerId, { sku, quantity }: { sku: string; quantity: number }) => updateCartItem(d, customerId, sku, quantity)),
      removeFromCart: change((d, customerId, { sku }: { sku: string }) => removeFromCart(d, customerId, sku)),
      clearCart: change(async (d, customerId) => {
        await d.store.clear(customerId);
      }),
      checkout: async (_, { input }, ctx) => {
        const customerId = requireOrderAccess(ctx.viewer, WHAT);
        return { id: await checkout({ ...deps(ctx), orders }, ctx.viewer, customerId, input) };
      },
    },
    Subscription: {
      cartUpdated: {
        subscribe: async (_, _args, ctx) => {
          const customerId = requireOrderAccess(ctx.viewer, WHAT);
          return liveQuery<CartView>({
            feed: runtime.live,
            channels: [store.channel(customerId)],
            // A fresh EntityManager per read: a subscription outlives any one request's identity map.
            load: async () => [await loadCart({ store, em: runtime.db.fork() }, customerId)],
            // The message is only the new version: every change means a re-read, coalesced while the client is slow.
            fromMessage: () => null,
            keyOf: (cart) => cart.customerId,
            versionOf: (cart) => cart.version,
            log: ctx.log,
          });
        },
        resolve: (cart: CartView) => cart,
      },
    },
    Cart: {
      items: (cart) => [...cart.items],
      warnings: async (cart) => {
        const sold = cart.items.filter((item) => item.status === 'ACTIVE').map((item) => item.sku);
        return cartWarnings(cart, await (cart.stock ?? stock(sold)));
      },
    },
    CartItem: {
      product: (item) => ({ sku: item.sku }),
    },
  };
}
