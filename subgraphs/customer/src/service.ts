import DataLoader from 'dataloader';
import type { GraphQLResolverMap } from '@apollo/subgraph';
import type { ServiceModule } from '@swiftcart/platform';
import type { CustomerContext } from './context.ts';
import { findCustomers } from './customers.ts';
import { Address, Customer } from './entities.ts';
import { migrations } from './migrations.ts';
import { customerResolvers } from './resolvers.ts';

/**
 * The customer service: profiles (created from the token on first use), addresses and notification
 * preferences. It publishes `customer.events.v1` (CustomerRegistered, CustomerUpdated) and consumes nothing.
 */
export const customerService: ServiceModule<CustomerContext> = {
  name: 'customer',
  entities: [Customer, Address],
  migrations,
  publishesEvents: true,
  resolvers: () => customerResolvers() as GraphQLResolverMap<CustomerContext>,
  context: (_runtime, base) => ({
    ...base,
    customers: new DataLoader(async (ids) => {
      const found = await findCustomers(base.em, ids);
      return ids.map((id) => found.get(id) ?? null);
    }),
  }),
};
