import { defineEntity, p } from '@mikro-orm/core';
import type { PostalAddress } from '@swiftcart/platform';

/**
 * A customer's profile. `id` is the `sub` of the customer's token; every other field is optional
 * until the customer fills it in. `version` is the optimistic lock and the version of the events.
 */
export const Customer = defineEntity({
  name: 'Customer',
  tableName: 'customer',
  properties: {
    id: p.text().primary(),
    email: p.text().nullable(),
    name: p.text().nullable(),
    phone: p.text().nullable(),
    notifyEmail: p.boolean(),
    notifySms: p.boolean(),
    version: p.integer().version(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** A customer row as MikroORM hands it out. */
export type CustomerEntity = InstanceType<typeof Customer.class>;

/** A saved address of one customer. At most one per customer is the default (a partial unique index). */
export const Address = defineEntity({
  name: 'Address',
  tableName: 'address',
  properties: {
    id: p.uuid().primary(),
    customerId: p.text(),
    name: p.text(),
    line1: p.text(),
    line2: p.text().nullable(),
    city: p.text(),
    postalCode: p.text(),
    country: p.string(),
    isDefault: p.boolean(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});

/** An address row as MikroORM hands it out. */
export type AddressEntity = InstanceType<typeof Address.class>;

/** An address as the API and the events see it: a checked postal address, its id and whether it is the default. */
export interface AddressRecord extends PostalAddress {
  readonly id: string;
  readonly isDefault: boolean;
}

/** A customer as resolvers see it: the profile with its addresses, the default first. */
export interface CustomerRecord {
  readonly id: string;
  readonly email: string | null;
  readonly name: string | null;
  readonly phone: string | null;
  readonly addresses: readonly AddressRecord[];
  readonly defaultAddress: AddressRecord | null;
  readonly notificationPreferences: { readonly email: boolean; readonly sms: boolean };
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** An address row in its API shape. */
export function toAddressRecord(row: AddressEntity): AddressRecord {
  return {
    id: row.id,
    name: row.name,
    line1: row.line1,
    line2: row.line2 ?? null,
    city: row.city,
    postalCode: row.postalCode,
    country: row.country,
    isDefault: row.isDefault,
  };
}

/** The default address first, then the oldest first (ids are UUID v7, so they sort by creation). */
function addressOrder(a: AddressEntity, b: AddressEntity): number {
  if (a.isDefault !== b.isDefault) return a.isDefault ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** A customer row and its address rows in their API shape. */
export function toCustomerRecord(row: CustomerEntity, addressRows: readonly AddressEntity[]): CustomerRecord {
  const addresses = [...addressRows].sort(addressOrder).map(toAddressRecord);
  return {
    id: row.id,
    email: row.email ?? null,
    name: row.name ?? null,
    phone: row.phone ?? null,
    addresses,
    defaultAddress: addresses.find((a) => a.isDefault) ?? null,
    notificationPreferences: { email: row.notifyEmail, sms: row.notifySms },
    version: row.version,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
