/**
 * Customers: profiles created on first use, their addresses and notification preferences. The ORM
 * for the aggregate (a customer and its addresses, changed under the customer's row lock), SQL only
 * to create a profile once however many first requests race (docs/conventions.md § Data access).
 */
import { LockMode } from '@mikro-orm/core';
import { z } from 'zod';
import {
  ErrorCode,
  apiError,
  badInput,
  checkPostalAddress,
  checkText,
  decodeCursor,
  enqueueEvents,
  newEvent,
  notFound,
  pageSize,
  toConnection,
  uuidv7,
  isUuid,
  type EntityManager,
  type EventOf,
  type PostalAddressInput,
} from '@swiftcart/platform';
import { Address, Customer, type AddressEntity, type CustomerEntity, type CustomerRecord, toCustomerRecord } from './entities.ts';

/** Addresses one customer may save. */
export const MAX_ADDRESSES = 20;
/** Longest e-mail address (RFC 5321's path limit). */
export const MAX_EMAIL_LENGTH = 254;
/** E.164: a plus, then 8 to 15 digits, the first not 0. */
const E164 = /^\+[1-9][0-9]{7,14}$/;
/** Spaces, dashes, dots and parentheses people type inside phone numbers. */
const PHONE_PUNCTUATION = /[\s\-.()]/g;
const EMAIL = z.email();

/** `UpdateProfileInput` as GraphQL hands it over. */
export interface ProfileInput {
  readonly email?: string | null;
  readonly name?: string | null;
  readonly phone?: string | null;
  readonly notificationPreferences?: { readonly email?: boolean | null; readonly sms?: boolean | null } | null;
}

/** `AddressInput` as GraphQL hands it over. */
export interface AddressInput extends PostalAddressInput {
  readonly isDefault?: boolean | null;
}

/** A checked profile change: `undefined` leaves a field as it is, `null` clears it. */
export interface ProfileChange {
  readonly email?: string | null;
  readonly name?: string | null;
  readonly phone?: string | null;
  readonly notifyEmail?: boolean;
  readonly notifySms?: boolean;
}

/** An optional text field: absent (or null) leaves it, empty clears it, anything else is checked by `check`. */
function optional(value: string | null | undefined, check: (trimmed: string) => string): string | null | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  return trimmed === '' ? null : check(trimmed);
}

/** Checks an UpdateProfileInput (BAD_USER_INPUT naming the first field at fault); nothing is read or written. */
export function checkProfileInput(input: ProfileInput): ProfileChange {
  const email = optional(input.email, (value) => {
    if (value.length > MAX_EMAIL_LENGTH || !EMAIL.safeParse(value).success) {
      throw badInput(`"input.email" must be an e-mail address of at most ${MAX_EMAIL_LENGTH} characters, e.g. alice@example.com`, 'input.email');
    }
    return value;
  });
  const name = optional(input.name, (value) => checkText(value, 'input.name', 1, 200));
  const phone = optional(input.phone, (value) => {
    const compact = value.replace(PHONE_PUNCTUATION, '');
    if (!E164.test(compact)) throw badInput('"input.phone" must be a phone number in E.164 form: + and 8 to 15 digits, e.g. +4930123456', 'input.phone');
    return compact;
  });
  const preferences = input.notificationPreferences ?? {};
  return {
    email,
    name,
    phone,
    notifyEmail: preferences.email ?? undefined,
    notifySms: preferences.sms ?? undefined,
  };
}

/** Checks an AddressInput at `at` (BAD_USER_INPUT naming the field). */
export function checkAddressInput(input: AddressInput, at = 'input'): { readonly address: ReturnType<typeof checkPostalAddress>; readonly isDefault: boolean } {
  return { address: checkPostalAddress(input, at), isDefault: input.isDefault === true };
}

/** BAD_USER_INPUT unless `id` is an address id (a UUID). */
function checkAddressId(id: string): void {
  if (!isUuid(id)) throw badInput('"id" must be an address id (a UUID)', 'id');
}

// Reads

/** Customers by id, each with its addresses: two queries, whatever the number of ids. */
export async function findCustomers(em: EntityManager, ids: readonly string[]): Promise<Map<string, CustomerRecord>> {
  if (ids.length === 0) return new Map();
  const [rows, addresses] = await Promise.all([em.fork().find(Customer, { id: { $in: [...ids] } }), addressesOf(em, ids)]);
  return new Map(rows.map((row) => [row.id, toCustomerRecord(row, addresses.get(row.id) ?? [])]));
}

/** The addresses of `ids`, by customer: one query. */
async function addressesOf(em: EntityManager, ids: readonly string[]): Promise<Map<string, AddressEntity[]>> {
  if (ids.length === 0) return new Map();
  return Map.groupBy(await em.fork().find(Address, { customerId: { $in: [...ids] } }), (a) => a.customerId);
}

/** `%` and `_` match themselves in a search, not any text. */
function likePattern(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A page of customers ordered by id; `search` matches id, name or e-mail case-insensitively. */
export async function listCustomers(em: EntityManager, args: { first?: number | null; after?: string | null; search?: string | null }) {
  const size = pageSize(args.first);
  const after = args.after == null ? null : decodeCursor(args.after);
  const search = args.search == null ? '' : checkText(args.search, 'search', 0, 200);
  const matching = search === '' ? {} : { $or: ['id', 'name', 'email'].map((field) => ({ [field]: { $ilike: likePattern(search) } })) };
  const where = after === null ? matching : { $and: [matching, { id: { $gt: after } }] };
  const [rows, totalCount] = await Promise.all([
    em.fork().find(Customer, where, { orderBy: { id: 'asc' }, limit: size + 1 }),
    em.fork().count(Customer, matching),
  ]);
  // The page's rows are already here: only their addresses are read.
  const addresses = await addressesOf(
    em,
    rows.map((row) => row.id),
  );
  const records = rows.map((row) => toCustomerRecord(row, addresses.get(row.id) ?? []));
  return toConnection(records, size, (c) => c.id, totalCount);
}

// Writes

/** What CustomerRegistered and CustomerUpdated carry: the profile as it is now, every address included. */
function eventData(record: CustomerRecord): EventOf<'CustomerUpdated'>['data'] {
  return {
    customerId: record.id,
    email: record.email,
    name: record.name,
    phone: record.phone,
    notificationPreferences: record.notificationPreferences,
    addresses: record.addresses,
    version: record.version,
  };
}

/**
 * Creates the profile of `customerId` when it has none (announcing CustomerRegistered), in `tx`.
 * Two first requests at once both get here; the primary key lets one insert and the other see it.
 */
async function register(tx: EntityManager, customerId: string): Promise<boolean> {
  const inserted = await tx.execute<{ id: string }[]>('insert into customer (id) values (?) on conflict (id) do nothing returning id', [customerId]);
  if (inserted.length === 0) return false;
  const row = await tx.findOneOrFail(Customer, { id: customerId });
  await enqueueEvents(tx, [newEvent('CustomerRegistered', eventData(toCustomerRecord(row, [])))]);
  return true;
}

/** The caller's profile, created on first use. */
export async function me(em: EntityManager, customerId: string): Promise<CustomerRecord> {
  const found = (await findCustomers(em, [customerId])).get(customerId);
  if (found) return found;
  await em.transactional((tx) => register(tx, customerId));
  return (await findCustomers(em, [customerId])).get(customerId)!;
}

/**
 * Runs `change` on the caller's customer and addresses under the customer's row lock, so that two
 * changes at once (two tabs) apply one after the other, then announces CustomerUpdated with the
 * new version. A profile is created first when the customer has none.
 */
async function changeCustomer(
  em: EntityManager,
  customerId: string,
  change: (tx: EntityManager, row: CustomerEntity, addresses: AddressEntity[]) => Promise<void> | void,
): Promise<CustomerRecord> {
  return em.transactional(async (tx) => {
    const lock = () => tx.findOne(Customer, { id: customerId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    // Only a customer without a profile pays for the insert; two such first requests both insert
    // `on conflict do nothing`, and the lock then orders them.
    let row = await lock();
    if (!row) {
      await register(tx, customerId);
      row = await lock();
      if (!row) throw new Error(`customer ${customerId} vanished after it was registered`);
    }
    const addresses = await tx.find(Address, { customerId });
    await change(tx, row, addresses);
    // Address rows are part of the customer: any change makes a new version of it.
    row.updatedAt = new Date();
    await tx.flush();
    const record = toCustomerRecord(row, addresses);
    await enqueueEvents(tx, [newEvent('CustomerUpdated', eventData(record))]);
    return record;
  });
}

/** Applies a checked profile change; SMS needs a phone number. */
export async function updateProfile(em: EntityManager, customerId: string, input: ProfileInput): Promise<CustomerRecord> {
  const change = checkProfileInput(input);
  return changeCustomer(em, customerId, (_tx, row) => {
    if (change.email !== undefined) row.email = change.email;
    if (change.name !== undefined) row.name = change.name;
    if (change.phone !== undefined) row.phone = change.phone;
    if (change.notifyEmail !== undefined) row.notifyEmail = change.notifyEmail;
    if (change.notifySms !== undefined) row.notifySms = change.notifySms;
    if (row.notifySms && row.phone == null) {
      throw badInput('"input.notificationPreferences.sms" needs a phone number: give "input.phone" too', 'input.notificationPreferences.sms');
    }
  });
}

/**
 * Makes `target` the one default among `addresses`. The old default is written first: the unique
 * index allows one default per customer after every row, not only at the end of the statement.
 */
async function makeDefault(tx: EntityManager, addresses: readonly AddressEntity[], target: AddressEntity): Promise<void> {
  const current = addresses.find((a) => a.isDefault);
  if (current === target) return;
  if (current) {
    current.isDefault = false;
    await tx.flush();
  }
  target.isDefault = true;
}

/** The caller's address `id`; NOT_FOUND when it is someone else's or none. */
function ownAddress(addresses: readonly AddressEntity[], id: string): AddressEntity {
  const found = addresses.find((a) => a.id === id.toLowerCase());
  if (!found) throw notFound('Address', id);
  return found;
}

/** Saves a new address; the first one, or one asked to be, becomes the default. */
export async function addAddress(em: EntityManager, customerId: string, input: AddressInput): Promise<CustomerRecord> {
  const { address, isDefault } = checkAddressInput(input);
  return changeCustomer(em, customerId, async (tx, _row, addresses) => {
    if (addresses.length >= MAX_ADDRESSES) {
      throw apiError(ErrorCode.Conflict, `A customer may save at most ${MAX_ADDRESSES} addresses; remove one first`, { field: 'input' });
    }
    const added = tx.create(Address, { id: uuidv7(), customerId, ...address, isDefault: false });
    addresses.push(added);
    if (isDefault || addresses.length === 1) await makeDefault(tx, addresses, added);
  });
}

/** Replaces an address's fields; `isDefault: true` also makes it the default. */
export async function updateAddress(em: EntityManager, customerId: string, id: string, input: AddressInput): Promise<CustomerRecord> {
  checkAddressId(id);
  const { address, isDefault } = checkAddressInput(input);
  return changeCustomer(em, customerId, async (tx, _row, addresses) => {
    const target = ownAddress(addresses, id);
    Object.assign(target, address);
    if (isDefault) await makeDefault(tx, addresses, target);
  });
}

/** Deletes an address; when it was the default, the oldest remaining one becomes the default. */
export async function removeAddress(em: EntityManager, customerId: string, id: string): Promise<CustomerRecord> {
  checkAddressId(id);
  return changeCustomer(em, customerId, async (tx, _row, addresses) => {
    const target = ownAddress(addresses, id);
    tx.remove(target);
    addresses.splice(addresses.indexOf(target), 1);
    // Deleted before another becomes the default, for the same unique index.
    await tx.flush();
    if (target.isDefault && addresses.length > 0) {
      await makeDefault(
        tx,
        addresses,
        addresses.reduce((a, b) => (a.id < b.id ? a : b)),
      );
    }
  });
}

/** Makes an address the default. */
export async function setDefaultAddress(em: EntityManager, customerId: string, id: string): Promise<CustomerRecord> {
  checkAddressId(id);
  return changeCustomer(em, customerId, (tx, _row, addresses) => makeDefault(tx, addresses, ownAddress(addresses, id)));
}

/** A demo customer for `npm run seed`. */
export interface SeedCustomer {
  readonly id: string;
  readonly profile: ProfileInput;
  readonly addresses: readonly AddressInput[];
}

/**
 * Gives each customer that has no profile yet its profile and addresses, through the same rules and
 * events as the API; customers that exist are left as they are. Returns how many were created.
 */
export async function seedCustomers(em: EntityManager, customers: readonly SeedCustomer[]): Promise<number> {
  let created = 0;
  for (const customer of customers) {
    if (await em.fork().findOne(Customer, { id: customer.id })) continue;
    await updateProfile(em, customer.id, customer.profile);
    for (const address of customer.addresses) await addAddress(em, customer.id, address);
    created++;
  }
  return created;
}
