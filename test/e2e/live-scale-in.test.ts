/**
 * A gateway replica scaled in while clients follow stock through it (docs/deploy.md, "Scaling in").
 * Two gateways stand behind a Service, played here by a TCP proxy that, like kube-proxy, sends each
 * new connection to one of the endpoints it has now: replica A (a child process, `node
 * gateway/src/main.ts`) and replica B (the stack's, in this process). A is then taken out of the
 * endpoints and sent SIGTERM, as Kubernetes does when an HPA or a rollout removes a pod.
 *
 * What the clients see: every socket on A closes with 1001 "Going away" and A exits 0. The SDK
 * (graphql-ws with its retries) reconnects through the Service, lands on B and sends the same
 * subscriptions again; B answers with the current level first (the version the client already had),
 * then every change. Its iterator never throws. A client that does not retry gets the 1001 close.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform';
import { GOING_AWAY } from '@swiftcart/platform/ws';
import { createClient as createSdkClient, type SwiftCartClient } from '../../clients/sdk/src/index.ts';
import { freePort } from '../../scripts/infra.ts';
import { seedProducts } from '../../subgraphs/product/src/catalogue.ts';
import { seedStock } from '../../subgraphs/inventory/src/stock.ts';
import { type TestStack, TEST_RATE_LIMITS, childServiceEnv, startStack } from '../support/stack.ts';
import { type LiveClient, connectLive } from '../support/subscriptions.ts';
import { waitFor } from '../support/wait.ts';

const SKU = 'SCALE-IN-1';
const STOCK = `subscription Stock($skus: [ID!]!) { stockLevelChanged(skus: $skus) { sku available version } }`;
const ADJUST = `mutation Adjust($sku: ID!, $delta: Int!) { adjustStock(sku: $sku, delta: $delta, reason: "scale-in test") { available version } }`;

/** A Service in front of gateway replicas: each new TCP connection goes to the next endpoint, round robin. */
class ServiceProxy {
  readonly #server = net.createServer((client) => this.#route(client));
  readonly #open = new Set<net.Socket>();
  #next = 0;
  /** The ports connections may go to now (the Service's ready endpoints). */
  endpoints: number[] = [];
  /** The endpoint each connection went to, in order. */
  readonly routed: number[] = [];

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}/graphql`;
  }

  #route(client: net.Socket): void {
    if (this.endpoints.length === 0) return void client.destroy();
    const port = this.endpoints[this.#next++ % this.endpoints.length];
    this.routed.push(port);
    const upstream = net.connect(port, '127.0.0.1');
    for (const socket of [client, upstream]) {
      this.#open.add(socket);
      socket.on('close', () => this.#open.delete(socket));
    }
    client.pipe(upstream).pipe(client);
    // Whichever side ends or fails, the other follows, as through a real proxy.
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  async close(): Promise<void> {
    for (const socket of this.#open) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

function exited(child: ChildProcess): Promise<number | NodeJS.Signals> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode!);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal!)));
}

describe('gateway scale-in with live subscriptions', () => {
  let stack: TestStack;
  let replicaA: ChildProcess;
  let portA: number;
  let portB: number;
  const service = new ServiceProxy();
  let serviceUrl: string;
  let sdk: SwiftCartClient;
  let plain: LiveClient;
  const output: string[] = [];

  before(async () => {
    stack = await startStack({ services: ['product', 'inventory'], gateway: true });
    await seedProducts(stack.services.product!.runtime.db.fork(), [
      { sku: SKU, name: 'Scale-in test', description: 'scale-in test product', priceAmount: 100, currency: 'EUR' },
    ]);
    await seedStock(stack.services.inventory!.runtime.db.fork(), [{ sku: SKU, onHand: 50 }]);
    portB = stack.gateway!.port;
    portA = await freePort();
    replicaA = spawn(process.execPath, [path.join(REPO_ROOT, 'gateway/src/main.ts')], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...childServiceEnv(stack.config),
        ...TEST_RATE_LIMITS,
        JWT_SECRET: stack.config.jwtSecret,
        LOG_LEVEL: 'info',
        GATEWAY_PORT: String(portA),
        PRODUCT_URL: stack.services.product!.url,
        INVENTORY_URL: stack.services.inventory!.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [replicaA.stdout!, replicaA.stderr!]) stream.on('data', (chunk: Buffer) => output.push(chunk.toString('utf8')));
    // Liveness, not readiness: /readyz asks every subgraph, and only two run here.
    await waitFor(
      async () => {
        if (replicaA.exitCode !== null) throw Object.assign(new Error(`replica A exited ${replicaA.exitCode}: ${output.join('')}`), { fatal: true });
        return (await fetch(`http://127.0.0.1:${portA}/healthz`)).ok;
      },
      'replica A to be up',
      60_000,
    );
    serviceUrl = await service.listen();
  });
  after(async () => {
    await sdk?.close();
    await plain?.close();
    if (replicaA && replicaA.exitCode === null && replicaA.signalCode === null) {
      replicaA.kill('SIGKILL');
      await exited(replicaA);
    }
    await service.close();
    await stack?.close();
  });

  it('closes the clients on the leaving replica with 1001; the SDK resubscribes through the Service and gets the current level, then changes', {
    timeout: 90_000,
  }, async () => {
    // Both clients land on A: it is the only endpoint for now.
    service.endpoints = [portA];
    sdk = createSdkClient({ url: serviceUrl });
    const levels = sdk.stockLevelChanged({ skus: [SKU] });
    const seen: { available: number; version: number }[] = [];
    let failure: unknown;
    const reading = (async () => {
      try {
        for await (const { stockLevelChanged: level } of levels) seen.push({ available: level.available, version: Number(level.version) });
      } catch (error) {
        failure = error;
      }
    })();
    await waitFor(() => seen.length === 1, 'the SDK to get the current level', 15_000);
    plain = connectLive(serviceUrl); // graphql-ws without retries
    const probe = plain.subscribe(STOCK, { skus: [SKU] });
    const before = await probe.waitFor((r) => r.data?.stockLevelChanged.available === 50, 'the current level');
    assert.deepEqual(seen, [{ available: 50, version: before.data.stockLevelChanged.version }]);
    assert.deepEqual(service.routed, [portA, portA]);

    // The scale-in: Kubernetes takes the pod out of the Service's endpoints and sends SIGTERM.
    service.endpoints = [portB];
    replicaA.kill('SIGTERM');
    assert.equal(await exited(replicaA), 0, `replica A's exit (output: ${output.join('')})`);
    assert.deepEqual(await plain.closed(), { code: GOING_AWAY.code, reason: GOING_AWAY.reason });
    // Without retries, graphql-ws ends the subscription with the close itself: nothing came before it.
    await waitFor(() => probe.ended, 'the subscription of the client without retries to end');
    assert.equal((probe.error as { code?: number } | undefined)?.code, GOING_AWAY.code, `it ended with: ${JSON.stringify(probe.error)}`);
    assert.equal(probe.results.length, 1);

    // The SDK reconnects (graphql-ws's backoff: 1.3 to 4.3 s), now to B, and subscribes again.
    await waitFor(
      () => seen.length === 2,
      'the SDK to get the level again from replica B',
      20_000,
      () => ({ seen, routed: service.routed }),
    );
    assert.deepEqual(seen[1], seen[0], 'first from B: the current level, at the version the client had');
    assert.deepEqual(service.routed.slice(2), [portB]);
    await waitFor(() => stack.gateway!.metrics().subscriptions === 1, 'replica B to hold the subscription');

    const admin = await stack.token('root', ['admin']);
    const adjusted = await stack.graphql(ADJUST, { token: admin, variables: { sku: SKU, delta: -7 } });
    assert.equal(adjusted.errors, undefined);
    await waitFor(
      () => seen.length === 3,
      'the change to reach the SDK through replica B',
      15_000,
      () => seen,
    );
    assert.deepEqual(seen[2], { available: 43, version: Number(adjusted.data.adjustStock.version) });
    assert.equal(failure, undefined, 'the SDK iterator never threw');

    await levels.return();
    await reading;
  });
});
