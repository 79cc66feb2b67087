/**
 * Deduplication and entity batching change no answer: every query of `schema/operations/` (what
 * the SDK and the storefront send) gets the same answer from a gateway with both deduplications
 * and batching on, asked several times at once, and from one that merges the entity fetches of
 * those requests (deduplication off), as from one with all three off, over the same subgraphs of
 * the whole platform.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type DocumentNode, Kind, parse, print, separateOperations } from 'graphql';
import { REPO_ROOT, SERVICE_NAMES } from '@swiftcart/platform';
import { type RunningGateway, startGateway } from '../../gateway/src/gateway.ts';
import { type SagaSystem, placeOrder, startSeededSaga, waitFor, waitForStatus } from '../support/saga.ts';
import { TestSmtpServer } from '../support/smtp-server.ts';
import { type TestStack, postGraphQL } from '../support/stack.ts';

const SKU = 'DEDUP-ANS-1';
const OPERATIONS = path.join(REPO_ROOT, 'schema', 'operations');

/** Every query of schema/operations, each as a document of its own with the fragments it uses. */
function queries(): Map<string, string> {
  const text = readdirSync(OPERATIONS)
    .filter((file) => file.endsWith('.graphql'))
    .map((file) => readFileSync(path.join(OPERATIONS, file), 'utf8'))
    .join('\n');
  const separated: Record<string, DocumentNode> = separateOperations(parse(text));
  const found = new Map<string, string>();
  for (const [name, document] of Object.entries(separated)) {
    const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
    if (operation?.operation === 'query') found.set(name, print(document));
  }
  return found;
}

describe('deduplication changes no answer', () => {
  let stack: TestStack;
  let system: SagaSystem;
  let smtp: TestSmtpServer;
  let on: RunningGateway;
  let off: RunningGateway;
  let batched: RunningGateway;
  let customer: string;
  let admin: string;
  let orderId: string;

  before(async () => {
    smtp = await TestSmtpServer.start();
    ({ stack, system, admin } = await startSeededSaga(
      [{ sku: SKU, onHand: 20, priceAmount: 1250 }],
      { NOTIFICATION_SMTP_URL: smtp.url, NOTIFICATION_POLL_MS: '50' },
      SERVICE_NAMES,
    ));
    customer = await stack.token('dedup-answers', ['customer']);
    const profile = await stack.graphql('mutation { updateMyProfile(input: { name: "Ada Lovelace", email: "ada@example.test" }) { id } }', { token: customer });
    assert.equal(profile.errors, undefined, JSON.stringify(profile.errors));
    const order = await placeOrder(system, customer, [{ sku: SKU, quantity: 2 }], 'tok_visa');
    orderId = order.id;
    await waitForStatus(system, customer, orderId, ['CONFIRMED'], 30_000);
    const cart = await stack.graphql(`mutation { addToCart(sku: "${SKU}", quantity: 1) { itemCount } }`, { token: customer });
    assert.equal(cart.errors, undefined, JSON.stringify(cart.errors));
    // Answers that still change would differ between the two gateways for that reason alone.
    await waitFor(
      async () => {
        const result = await stack.graphql('{ myNotifications(first: 20) { edges { node { status } } } }', { token: customer });
        const statuses: string[] = result.data?.myNotifications.edges.map((e: { node: { status: string } }) => e.node.status) ?? [];
        return statuses.length >= 2 && statuses.every((s) => s === 'SENT' || s === 'SKIPPED') ? true : undefined;
      },
      'the order confirmation e-mails to be sent',
      30_000,
    );
    const subgraphUrls = Object.fromEntries(SERVICE_NAMES.map((name) => [name, stack.services[name]!.url]));
    const start = (dedup: 'on' | 'off', batch: 'on' | 'off') =>
      startGateway({
        config: {
          ...stack.config,
          vars: { ...stack.config.vars, GATEWAY_DEDUP_INBOUND: dedup, GATEWAY_DEDUP_SUBGRAPH: dedup, GATEWAY_BATCH_ENTITIES: batch },
        },
        port: 0,
        subgraphUrls,
      });
    [on, off, batched] = await Promise.all([start('on', 'on'), start('off', 'off'), start('off', 'on')]);
  });

  after(async () => {
    await on?.close();
    await off?.close();
    await batched?.close();
    await stack?.close();
    await smtp?.close();
  });

  it('every query of schema/operations answers the same with deduplication and batching on (asked four times at once) and off', async () => {
    const now = Date.now();
    const variables: Record<string, { readonly variables: Record<string, unknown>; readonly token: () => string | undefined }> = {
      SalesSummary: {
        variables: { from: new Date(now - 86_400_000).toISOString(), to: new Date(now + 3_600_000).toISOString(), granularity: 'HOUR' },
        token: () => admin,
      },
      TopProducts: { variables: { from: new Date(now - 86_400_000).toISOString(), to: new Date(now + 3_600_000).toISOString() }, token: () => admin },
      MyCart: { variables: {}, token: () => customer },
      Me: { variables: {}, token: () => customer },
      MyNotifications: { variables: { first: 10 }, token: () => customer },
      OrderNotifications: { variables: { id: orderId }, token: () => customer },
      MyOrders: { variables: {}, token: () => customer },
      Order: { variables: { id: orderId }, token: () => customer },
      BrowseProducts: { variables: { first: 5 }, token: () => undefined },
      SearchProducts: { variables: { filter: { search: 'dedup' } }, token: () => undefined },
      Product: { variables: { sku: SKU }, token: () => undefined },
    };
    const found = queries();
    assert.deepEqual([...found.keys()].sort(), Object.keys(variables).sort(), 'a query of schema/operations needs its variables here');
    const before = on.dedup().inbound.shared;
    for (const [name, query] of found) {
      const { variables: values, token } = variables[name];
      const [reference, ...shared] = await Promise.all(
        [off, on, on, on, on, batched, batched, batched, batched].map((gateway) => postGraphQL(gateway.url, query, values, token())),
      );
      assert.equal(reference.errors, undefined, `${name}: ${JSON.stringify(reference.errors)}`);
      assert.ok(reference.data && Object.values(reference.data).some((v) => v !== null), `${name} found something`);
      for (const answer of shared)
        assert.deepEqual(
          { status: answer.status, data: answer.data, errors: answer.errors },
          { status: reference.status, data: reference.data, errors: reference.errors },
          name,
        );
    }
    assert.ok(on.dedup().inbound.shared > before, 'requests were shared');
    assert.deepEqual(off.dedup().inbound, { executed: 0, shared: 0, ineligible: 0 });
    const merged = Object.values(batched.entityBatches()).reduce((sum, { fetches, requests }) => sum + fetches - requests, 0);
    assert.ok(merged > 0, `entity fetches were merged: ${JSON.stringify(batched.entityBatches())}`);
  });
});
