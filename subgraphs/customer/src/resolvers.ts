import { ErrorCode, apiError, canRead, requireCustomer, requireRole, type Viewer } from '@swiftcart/platform';
import type { Resolvers } from './generated/resolvers.ts';
import type { CustomerContext } from './context.ts';
import type { CustomerRecord } from './entities.ts';
import { addAddress, listCustomers, me, removeAddress, setDefaultAddress, updateAddress, updateProfile } from './customers.ts';

/** The one lookup behind `customer(id)` and `__resolveReference`: the caller's own record, or any for an admin. */
async function readCustomer(ctx: CustomerContext, viewer: Viewer, id: string): Promise<CustomerRecord | null> {
  requireCustomer(viewer, 'a customer');
  if (!canRead(viewer, id)) throw apiError(ErrorCode.Forbidden, 'A customer may read only their own profile');
  return ctx.customers.load(id);
}

/** The customer subgraph's resolvers. */
export function customerResolvers(): Resolvers {
  return {
    Query: {
      me: (_, _args, ctx) => me(ctx.em, requireCustomer(ctx.viewer, 'your profile')),
      customer: (_, { id }, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return readCustomer(ctx, ctx.viewer, id);
      },
      customers: (_, args, ctx) => {
        requireRole(ctx.viewer, 'admin');
        return listCustomers(ctx.em, args);
      },
    },
    Mutation: {
      updateMyProfile: (_, { input }, ctx) => updateProfile(ctx.em, requireCustomer(ctx.viewer, 'your profile'), input),
      addAddress: (_, { input }, ctx) => addAddress(ctx.em, requireCustomer(ctx.viewer, 'your addresses'), input),
      updateAddress: (_, { id, input }, ctx) => updateAddress(ctx.em, requireCustomer(ctx.viewer, 'your addresses'), id, input),
      removeAddress: (_, { id }, ctx) => removeAddress(ctx.em, requireCustomer(ctx.viewer, 'your addresses'), id),
      setDefaultAddress: (_, { id }, ctx) => setDefaultAddress(ctx.em, requireCustomer(ctx.viewer, 'your addresses'), id),
    },
    Customer: {
      __resolveReference: (reference, ctx) => readCustomer(ctx, ctx.viewer, reference.id),
    },
  };
}
