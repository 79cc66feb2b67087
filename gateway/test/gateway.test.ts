/**
 * The gateway in front of a real product subgraph (own database, Redis prefix, topics): auth at the
 * edge and forwarding, validation errors, health, supergraph loading and routing URL overrides.
 * The Sandbox landing page has its own file, sandbox.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { SERVICE_NAMES, signToken, viewerFromAuthorization } from '@swiftcart/platform';
import { isolatedConfig, postGraphQL, startStack, type TestStack } from '../../test/support/stack.ts';
import { type Fetcher, SupergraphError, startGateway } from '../src/gateway.ts';
import { createKeepAliveFetcher } from '../src/fetcher.ts';

const CREATE = `mutation Create($input: CreateProductInput!) { createProduct(input: $input) { sku name price { amount currency } } }`;
const PRODUCTS = `query Products { products(first: 5) { totalCount edges { node { sku name } } } }`;
const PRODUCTION_SECRET = 'gateway-test-production-secret-0123456789';

let stack: TestStack;
let productUrl: string;
let tmp: string;

before(async () => {
  stack = await startStack({ services: ['product'], gateway: true });
  productUrl = stack.services.product!.url;
  tmp = await mkdtemp(path.join(tmpdir(), 'swiftcart-gateway-test-'));
});

after(async () => {
  await stack?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A keep-alive fetcher that counts the calls that reach subgraphs. */
function countingFetcher(): Fetcher & { calls: number; close(): void } {
  const inner = createKeepAliveFetcher();
  const fetcher = Object.assign(
    (url: string, init?: Parameters<Fetcher>[1]) => {
      fetcher.calls += 1;
      return inner(url, init);
    },
    { calls: 0, close: () => inner.close() },
  );
  return fetcher;
}

describe('auth at the edge, forwarded to subgraphs', () => {
  test('an admin token is forwarded unchanged: the admin mutation succeeds', async () => {
    const token = await stack.token('ada', ['admin']);
    const result = await stack.graphql(CREATE, {
      token,
      variables: { input: { sku: 'GW-ADMIN-1', name: 'Gateway mug', price: { amount: 1299, currency: 'EUR' } } },
    });
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    assert.deepEqual(result.data.createProduct, { sku: 'GW-ADMIN-1', name: 'Gateway mug', price: { amount: 1299, currency: 'EUR' } });
  });

  test('a customer token reaches the subgraph, which refuses with FORBIDDEN', async () => {
    const token = await stack.token('carol', ['customer']);
    const result = await stack.graphql(CREATE, { token, variables: { input: { sku: 'GW-CUST-1', name: 'Nope', price: { amount: 1, currency: 'EUR' } } } });
    assert.equal(result.status, 200);
    assert.equal(result.errors?.[0].extensions?.code, 'FORBIDDEN');
    assert.match(result.errors![0].message, /carol/);
  });

  test('no token: anonymous, so the admin mutation is FORBIDDEN and public reads work', async () => {
    const denied = await stack.graphql(CREATE, { variables: { input: { sku: 'GW-ANON-1', name: 'Nope', price: { amount: 1, currency: 'EUR' } } } });
    assert.equal(denied.errors?.[0].extensions?.code, 'FORBIDDEN');
    assert.match(denied.errors![0].message, /no token was sent/);
    const read = await stack.graphql(PRODUCTS);
    assert.equal(read.errors, undefined);
    assert.ok(read.data.products.edges.some((e: any) => e.node.sku === 'GW-ADMIN-1'));
  });

  test('garbage, expired, wrong-secret and non-bearer tokens are UNAUTHENTICATED (401) and nothing reaches a subgraph', async () => {
    const fetcher = countingFetcher();
    await using gateway = await startGateway({ config: stack.config, port: 0, subgraphUrls: { product: productUrl }, fetcher });
    try {
      const control = await postGraphQL(gateway.url, PRODUCTS);
      assert.equal(control.errors, undefined);
      const callsBefore = fetcher.calls;
      assert.ok(callsBefore > 0, 'a valid request reaches the subgraph through this fetcher');

      const expired = await signToken(stack.config.jwtSecret, { sub: 'old', roles: ['admin'] }, Math.floor(Date.now() / 1000) - 60);
      const foreign = await signToken('another-secret-that-is-at-least-32-bytes-long', { sub: 'eve', roles: ['admin'] });
      const cases: [string, Record<string, string>, RegExp][] = [
        ['garbage', { authorization: 'Bearer not.a.jwt' }, /Invalid token/],
        ['expired', { authorization: `Bearer ${expired}` }, /expired/],
        ['wrong secret', { authorization: `Bearer ${foreign}` }, /signature/],
        ['not bearer', { authorization: 'Basic YWRhOnNlY3JldA==' }, /Bearer/],
      ];
      for (const [name, headers, message] of cases) {
        const response = await fetch(gateway.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query: CREATE, variables: { input: { sku: `GW-BAD-${name}`, name: 'x', price: { amount: 1, currency: 'EUR' } } } }),
        });
        const body = (await response.json()) as any;
        assert.equal(response.status, 401, name);
        assert.equal(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', name);
        assert.match(body.errors[0].message, message, name);
        assert.equal(body.data, undefined, name);
      }
      assert.equal(fetcher.calls, callsBefore, 'no request with a bad token reached a subgraph');
    } finally {
      fetcher.close();
    }
  });
});

describe('errors', () => {
  test('a query that fails validation is a 400 with GRAPHQL_VALIDATION_FAILED and no stack trace', async () => {
    const result = await stack.graphql('query Bad { products(first: 1) { edges { node { sku noSuchField } } } }');
    assert.equal(result.status, 400);
    assert.equal(result.errors?.[0].extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
    assert.match(result.errors![0].message, /noSuchField/);
    assert.equal(result.errors![0].extensions?.stacktrace, undefined);
  });

  test('a syntax error is a 400 with GRAPHQL_PARSE_FAILED', async () => {
    const result = await stack.graphql('query { products(');
    assert.equal(result.status, 400);
    assert.equal(result.errors?.[0].extensions?.code, 'GRAPHQL_PARSE_FAILED');
  });

  test('outside production, a mutation whose subgraph refuses the connection says so: SERVICE_UNAVAILABLE, a 503 with Retry-After', async () => {
    await using gateway = await startGateway({ config: stack.config, port: 0, subgraphUrls: { product: 'http://127.0.0.1:9/graphql' } });
    const admin = await signToken(stack.config.jwtSecret, { sub: 'root', roles: ['admin'] });
    const result = await postGraphQL(gateway.url, CREATE, { input: { sku: 'DOWN-1', name: 'Down', price: { amount: 100, currency: 'EUR' } } }, admin);
    assert.equal(result.errors?.[0].extensions?.code, 'SERVICE_UNAVAILABLE');
    assert.equal(result.errors?.[0].extensions?.retryAfterSeconds, 2);
    assert.equal(result.status, 503);
    assert.match(result.errors![0].message, /ECONNREFUSED/, "the cause, not an error of the gateway's own hooks");
  });

  test('in production, an unreachable subgraph is SERVICE_UNAVAILABLE without URLs', async () => {
    // This test's own document: trusted documents (enforced in production) are another test's subject.
    const config = isolatedConfig({ NODE_ENV: 'production', JWT_SECRET: PRODUCTION_SECRET, LOG_LEVEL: 'silent', TRUSTED_DOCUMENTS: 'off' });
    await using gateway = await startGateway({ config, port: 0, subgraphUrls: { product: 'http://127.0.0.1:9/graphql' } });
    const result = await postGraphQL(gateway.url, PRODUCTS);
    assert.equal(result.errors?.[0].extensions?.code, 'SERVICE_UNAVAILABLE');
    assert.equal(result.errors![0].message, 'a service this request needs is briefly unavailable; try again');
    assert.doesNotMatch(JSON.stringify(result.errors), /127\.0\.0\.1|ECONNREFUSED|stacktrace/);
  });
});

describe('health', () => {
  test('/healthz names the process and its memory outside production', async () => {
    const health = (await (await fetch(`${new URL(stack.gateway!.url).origin}/healthz`)).json()) as any;
    assert.equal(health.status, 'ok');
    assert.equal(health.pid, process.pid);
    assert.ok(health.rssBytes > 0 && health.maxRssBytes >= health.rssBytes * 0.5);
  });

  test('/readyz is unavailable while a subgraph of the supergraph does not answer, and names it', async () => {
    // The stack's gateway uses the full supergraph; only product runs, so the others are down
    // (unless something listens on their default ports: then they are checked for real).
    const response = await fetch(`${new URL(stack.gateway!.url).origin}/readyz`);
    const report = (await response.json()) as any;
    assert.equal(report.checks.product.ok, true);
    assert.equal(report.checks.supergraph.ok, true);
    assert.deepEqual(Object.keys(report.checks).sort(), [...SERVICE_NAMES, 'supergraph'].sort());
    const allUp = Object.values(report.checks).every((c: any) => c.ok);
    assert.equal(response.status, allUp ? 200 : 503);
  });
});

describe('supergraph loading and routing', () => {
  test('SUPERGRAPH_PATH pointing at a missing file: startGateway rejects with a message naming it', async () => {
    const missing = path.join(tmp, 'missing.graphql');
    const config = isolatedConfig({ SUPERGRAPH_PATH: missing });
    await assert.rejects(startGateway({ config, port: 0 }), (error: Error) => {
      assert.ok(error instanceof SupergraphError);
      assert.ok(error.message.includes(missing), error.message);
      assert.match(error.message, /does not exist/);
      return true;
    });
  });

  test('a file that is not a supergraph: startGateway rejects with a message naming it', async () => {
    const notSupergraph = path.join(tmp, 'plain.graphql');
    await writeFile(notSupergraph, 'type Query { hello: String }\n');
    await assert.rejects(startGateway({ config: stack.config, port: 0, supergraphPath: notSupergraph }), (error: Error) => {
      assert.ok(error instanceof SupergraphError);
      assert.ok(error.message.includes(notSupergraph), error.message);
      assert.match(error.message, /could not be loaded/);
      return true;
    });
  });

  test('a routing URL override (option) reaches a subgraph the supergraph routes to 4001', async () => {
    assert.notEqual(new URL(productUrl).port, '4001');
    await using gateway = await startGateway({ config: stack.config, port: 0, subgraphUrls: { product: productUrl } });
    assert.equal(gateway.subgraphs.product, productUrl);
    assert.equal(gateway.subgraphs.inventory, 'http://127.0.0.1:4002/graphql', 'others keep the URL in the file');
    const result = await postGraphQL(gateway.url, PRODUCTS);
    assert.equal(result.errors, undefined);
  });

  test('PRODUCT_URL in the environment overrides the file, and the option overrides the environment', async () => {
    // The same credential as the stack's subgraph: a fresh isolated config would bring its own.
    const fromEnv = isolatedConfig({ PRODUCT_URL: productUrl, SUBGRAPH_SECRET: stack.config.subgraphSecret! });
    await using byEnv = await startGateway({ config: fromEnv, port: 0 });
    assert.equal(byEnv.subgraphs.product, productUrl);
    assert.equal((await postGraphQL(byEnv.url, PRODUCTS)).errors, undefined);

    const deadEnv = isolatedConfig({ PRODUCT_URL: 'http://127.0.0.1:9/graphql', SUBGRAPH_SECRET: stack.config.subgraphSecret! });
    await using byOption = await startGateway({ config: deadEnv, port: 0, subgraphUrls: { product: productUrl } });
    assert.equal(byOption.subgraphs.product, productUrl);
    assert.equal((await postGraphQL(byOption.url, PRODUCTS)).errors, undefined);
  });

  test('an override that is not an http(s) URL is refused at start', async () => {
    await assert.rejects(
      startGateway({ config: stack.config, port: 0, subgraphUrls: { product: 'ftp://example/graphql' } }),
      /subgraph "product" must be http or https/,
    );
  });

  test('any supergraph works: one composed from the product subgraph alone, and /readyz is ready', async () => {
    const composed = composeServices([{ name: 'catalogue', url: 'http://127.0.0.1:4001/graphql', typeDefs: parse(await readSchema('product')) }]);
    assert.equal(composed.errors, undefined);
    const file = path.join(tmp, 'catalogue-only.graphql');
    await writeFile(file, composed.supergraphSdl!);
    // The name in this supergraph is "catalogue", so the override is keyed by that name.
    await using gateway = await startGateway({ config: stack.config, port: 0, supergraphPath: file, subgraphUrls: { catalogue: productUrl } });
    assert.deepEqual(gateway.subgraphs, { catalogue: productUrl });
    const ready = await fetch(`${new URL(gateway.url).origin}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(Object.keys(((await ready.json()) as any).checks).sort(), ['catalogue', 'supergraph']);
    const result = await postGraphQL(gateway.url, PRODUCTS);
    assert.equal(result.errors, undefined);
  });
});

describe('viewer round trip', () => {
  test('a token the gateway accepts is one the platform verifies to the same viewer', async () => {
    const token = await stack.token('dave', ['customer', 'admin']);
    const viewer = await viewerFromAuthorization(`Bearer ${token}`, stack.config.jwtSecret);
    const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.deepEqual(viewer, { customerId: 'dave', roles: ['customer', 'admin'], expiresAt: exp * 1000 });
  });
});

async function readSchema(name: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { REPO_ROOT } = await import('@swiftcart/platform');
  return readFile(path.join(REPO_ROOT, 'schema', `${name}.graphql`), 'utf8');
}
