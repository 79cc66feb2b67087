/**
 * The users the development sign-in offers, and the roles of each one's token: three customers and
 * one admin (the sales dashboard). One list for both sides: server.ts signs only these names, and
 * the header offers them. Development only: production has no such sign-in.
 */
export const DEMO_USERS = {
  alice: ['customer'],
  bob: ['customer'],
  carol: ['customer'],
  admin: ['admin'],
} as const satisfies Readonly<Record<string, readonly ('customer' | 'admin')[]>>;

/** The name of a demo user. */
export type DemoUser = keyof typeof DEMO_USERS;

/** The names, customers first: what the sign-in offers, in that order. */
export const DEMO_USER_NAMES = Object.keys(DEMO_USERS) as DemoUser[];

/** Whether `name` is a demo user (anything else is refused). */
export function isDemoUser(name: unknown): name is DemoUser {
  return typeof name === 'string' && Object.hasOwn(DEMO_USERS, name);
}
