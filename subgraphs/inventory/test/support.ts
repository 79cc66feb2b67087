/** Helpers shared by the inventory subgraph's tests (not a test file itself). */
import type { EntityManager } from '@swiftcart/platform';
import type { TestStack } from '../../../test/support/stack.ts';

/** The inventory service's EntityManager, for arranging and inspecting rows directly. */
export function em(stack: TestStack): EntityManager {
  return stack.services.inventory!.runtime.db.fork();
}

/** The stock row of `sku` as PostgreSQL holds it, or undefined. */
export async function stockRow(stack: TestStack, sku: string): Promise<{ on_hand: number; reserved: number; version: number } | undefined> {
  const [row] = await em(stack).execute<{ on_hand: number; reserved: number; version: number }[]>(
    'select on_hand, reserved, version from stock where sku = ?',
    [sku],
  );
  return row;
}

/** The audit rows of `sku`, oldest first. */
export async function auditRows(stack: TestStack, sku: string): Promise<{ delta: number; reason: string; actor: string; on_hand_after: number }[]> {
  return em(stack).execute('select delta, reason, actor, on_hand_after from stock_adjustment where sku = ? order by id', [sku]);
}

/** How many audit rows exist in all. */
export async function auditCount(stack: TestStack): Promise<number> {
  const [row] = await em(stack).execute<{ n: number }[]>('select count(*)::integer as n from stock_adjustment');
  return row.n;
}

/** Sets `reserved` directly (the saga will do this; the tests need reserved units now). */
export async function setReserved(stack: TestStack, sku: string, reserved: number): Promise<void> {
  await em(stack).execute('update stock set reserved = ? where sku = ?', [reserved, sku], 'run');
}

export const ADJUST = `mutation($sku: ID!, $delta: Int!, $reason: String!) {
  adjustStock(sku: $sku, delta: $delta, reason: $reason) { sku onHand reserved available version updatedAt }
}`;
