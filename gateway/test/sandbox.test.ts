/**
 * Apollo Sandbox, preconfigured (gateway/src/sandbox.ts): the page a real gateway serves at `/` and
 * on GET /graphql accepting HTML, and that production serves none of it. Sandbox's own script comes
 * from Apollo's CDN, which tests cannot reach, so they check what the gateway serves: the
 * endpoints, the subscription protocol, the development token and the example operation.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { Supergraph } from '@apollo/federation-internals';
import { Kind, type OperationDefinitionNode, parse, validate } from 'graphql';
import { ConfigError, viewerFromAuthorization } from '@swiftcart/platform';
import { isolatedConfig, postGraphQL } from '../../test/support/stack.ts';
import { type RunningGateway, startGateway } from '../src/gateway.ts';
import { DEMO_TOKEN_LIFETIME_SECONDS, EXAMPLE_DOCUMENT, EXAMPLE_OPERATIONS, createSandbox, sandboxEndpoints } from '../src/sandbox.ts';
import { CONFIG_ELEMENT_ID, EXPLORER_BUNDLE, EXPLORER_PATH, type ExplorerConfig, explorerAssets, renderExplorerPage } from '../src/explorer.ts';

const PRODUCTION_SECRET = 'sandbox-test-production-secret-0123456789';
const CDN_SCRIPT = /sandboxScript\.src = "https:\/\/embeddable-sandbox\.cdn\.apollographql\.com\/v2\/embeddable-sandbox\.umd\.production\.min\.js";/;

/** The options object the page passes to `new window.EmbeddedSandbox(...)`. */
function embeddedOptions(html: string): any {
  const match = /var sandboxOptions = (\{[\s\S]*?\});\s*var explorerAssets/.exec(html);
  assert.ok(match, 'the page configures EmbeddedSandbox');
  assert.match(html, /new window\.EmbeddedSandbox\(sandboxOptions\)/);
  return JSON.parse(match[1]);
}

/** The offline explorer's configuration in a page (explorer.ts). */
function explorerConfigOf(html: string): ExplorerConfig {
  const match = new RegExp(`<script type="application/json" id="${CONFIG_ELEMENT_ID}">([\\s\\S]*?)</script>`).exec(html);
  assert.ok(match, 'the page holds the explorer configuration');
  return JSON.parse(match[1]);
}

/** The JWT claims of a `Bearer <token>` header, unverified. */
function claims(authorization: string): { sub: string; roles: string[]; iat: number; exp: number } {
  const token = /^Bearer (\S+)$/.exec(authorization)?.[1];
  assert.ok(token, `"${authorization}" is a bearer header`);
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

function origin(gateway: RunningGateway): string {
  return new URL(gateway.url).origin;
}

describe('Sandbox at the gateway root, outside production', () => {
  const config = isolatedConfig();
  let gateway: RunningGateway;
  before(async () => {
    // No subgraph needs to run: the page, the token and `{ __typename }` are the gateway's own.
    gateway = await startGateway({ config, port: 0 });
  });
  after(() => gateway?.close());

  test("GET / is the Sandbox page (200, text/html) naming this gateway's endpoint and its ws:// subscription endpoint", async () => {
    assert.notEqual(new URL(gateway.url).port, '4000', 'a port picked at start (0), not the default');
    const response = await fetch(`${origin(gateway)}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const html = await response.text();
    assert.match(html, CDN_SCRIPT);
    assert.match(html, /<div id="embeddableSandbox"><\/div>/);

    const options = embeddedOptions(html);
    const subscriptions = gateway.url.replace(/^http:/, 'ws:');
    assert.equal(options.target, '#embeddableSandbox');
    assert.equal(options.initialEndpoint, gateway.url);
    assert.equal(options.initialSubscriptionEndpoint, subscriptions);
    assert.equal(options.endpointIsEditable, false);
    assert.equal(options.runTelemetry, false);
    assert.equal(options.allowDynamicStyles, false);
    assert.equal(options.initialState.includeCookies, false);
    // What the page itself shows until Sandbox covers it (and when the CDN is out of reach).
    assert.ok(html.includes(`<code>${gateway.url}</code>`));
    assert.ok(html.includes(`<code>${subscriptions}</code>, graphql-ws (WebSocket subprotocol <code>graphql-transport-ws</code>)`));
    assert.equal(gateway.sandboxUrl, `${origin(gateway)}/`);
  });

  test("the default Authorization header is a 12-hour development token that the gateway's secret verifies as the demo customer", async () => {
    const { headers } = embeddedOptions(await (await fetch(`${origin(gateway)}/`)).text()).initialState;
    assert.deepEqual(Object.keys(headers), ['Authorization']);
    const viewer = await viewerFromAuthorization(headers.Authorization, config.jwtSecret);
    const { iat, exp } = claims(headers.Authorization);
    assert.deepEqual(viewer, { customerId: 'demo-customer', roles: ['customer'], expiresAt: exp * 1000 });
    assert.equal(exp - iat, DEMO_TOKEN_LIFETIME_SECONDS);
    assert.equal(DEMO_TOKEN_LIFETIME_SECONDS, 12 * 3600);
    assert.ok(exp * 1000 > Date.now() + 11 * 3600 * 1000, 'good for a working session');
    await assert.rejects(viewerFromAuthorization(headers.Authorization, PRODUCTION_SECRET), /signature/, "signed with this gateway's secret only");
    // The gateway accepts it at the edge.
    const response = await fetch(gateway.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: headers.Authorization },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { data: { __typename: 'Query' } });
  });

  test('the example operation: a query, a mutation and two subscriptions, valid against the supergraph, with variables for each', async () => {
    const { document, variables } = embeddedOptions(await (await fetch(`${origin(gateway)}/`)).text()).initialState;
    assert.equal(document, EXAMPLE_DOCUMENT);
    const parsed = parse(document);
    const operations = parsed.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    assert.deepEqual(
      operations.map((o) => `${o.operation} ${o.name?.value}`),
      ['query Products', 'mutation PlaceOrder', 'subscription StockChanges', 'subscription OrderUpdates'],
    );
    const fields = operations.map((o) => (o.selectionSet.selections[0] as { name: { value: string } }).name.value);
    assert.deepEqual(fields, ['products', 'placeOrder', 'stockLevelChanged', 'orderUpdated']);

    const schema = Supergraph.build(await readFile(config.supergraphPath, 'utf8'))
      .apiSchema()
      .toGraphQLJSSchema();
    assert.deepEqual(
      validate(schema, parsed).map((e) => e.message),
      [],
    );
    for (const operation of operations) {
      for (const definition of operation.variableDefinitions ?? []) {
        assert.ok(definition.variable.name.value in variables, `$${definition.variable.name.value} of ${operation.name?.value} has an example value`);
      }
    }
    assert.equal(variables.input.paymentMethod, 'tok_visa');
    assert.deepEqual(variables.skus, ['SKU-0001', 'SKU-0002']);
  });

  test('GET /graphql accepting HTML serves the same configuration; HEAD / answers without a body', async () => {
    const fromRoot = embeddedOptions(await (await fetch(`${origin(gateway)}/`)).text());
    const response = await fetch(gateway.url, { headers: { accept: 'text/html' } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    const html = await response.text();
    assert.match(html, CDN_SCRIPT);
    assert.deepEqual(embeddedOptions(html), fromRoot);
    assert.doesNotMatch(html, /window\.location\.href/, "the endpoint is explicit, not the page's URL");

    const head = await fetch(`${origin(gateway)}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.ok(Number(head.headers.get('content-length')) > 1000);
    assert.equal(await head.text(), '');
  });

  test('the offline explorer: the page carries its configuration (these endpoints, the same token, one tab per example); /graphiql serves it with the bundle', async () => {
    await EXPLORER_BUNDLE.buildIfStale();
    const sandboxPage = await (await fetch(`${origin(gateway)}/`)).text();
    const options = embeddedOptions(sandboxPage);
    const explorer = explorerConfigOf(sandboxPage);
    assert.equal(explorer.endpoint, gateway.url);
    assert.equal(explorer.subscriptionEndpoint, gateway.url.replace(/^http/, 'ws'));
    assert.deepEqual(explorer.headers, options.initialState.headers);
    assert.deepEqual(
      explorer.operations.map((o) => o.name),
      EXAMPLE_OPERATIONS.map((o) => o.name),
    );
    assert.match(explorer.operations[0].document, /^# SwiftCart: [\s\S]*\nquery Products \{/, 'the first tab opens with the introduction');
    for (const [index, operation] of explorer.operations.entries()) {
      assert.equal(parse(operation.document).definitions.length, 1, `${operation.name}: one operation per tab`);
      assert.deepEqual(operation.variables, EXAMPLE_OPERATIONS[index].variables);
    }

    const response = await fetch(`${origin(gateway)}${EXPLORER_PATH}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const page = await response.text();
    assert.deepEqual(explorerConfigOf(page), explorer);
    const assets = explorerAssets();
    assert.ok(assets, 'built');
    assert.ok(page.includes(`src="${assets.script}"`), 'the page loads the built entry');
    for (const href of assets.styles) assert.ok(page.includes(`href="${href}"`));
    const port = new URL(gateway.url).port;
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(page)?.[1].replaceAll('&#39;', "'");
    assert.ok(csp?.includes(`connect-src 'self' http://127.0.0.1:${port} ws://127.0.0.1:${port}`), `requests and sockets go to the gateway only: ${csp}`);
    assert.doesNotMatch(page, /https:\/\//, 'nothing from the internet');

    assert.doesNotMatch(assets.script, /^\//, 'relative, so that a proxy under a path serves it too');
    const script = await fetch(`${origin(gateway)}/${assets.script}`);
    assert.equal(script.status, 200);
    assert.equal(script.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(script.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.ok((await script.text()).length > 1000);
    for (const hidden of ['/.vite/manifest.json', '/.build-stamp', '/assets/..%2F.vite%2Fmanifest.json', '/assets/missing.js']) {
      const other = await fetch(`${origin(gateway)}${EXPLORER_PATH}${hidden}`);
      assert.equal(other.status, 404, hidden);
      await other.body?.cancel();
    }
    // With a trailing slash, the page's relative URLs would point one level too deep: redirected.
    const slash = await fetch(`${origin(gateway)}${EXPLORER_PATH}/`, { redirect: 'manual' });
    assert.equal(slash.status, 308);
    assert.equal(new URL(slash.headers.get('location')!, `${origin(gateway)}${EXPLORER_PATH}/`).pathname, EXPLORER_PATH);
    const post = await fetch(`${origin(gateway)}${EXPLORER_PATH}`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 404);
    await post.body?.cancel();
  });

  test('an explorer that is not built says how to build it, and loads nothing', () => {
    const page = renderExplorerPage(
      { endpoint: 'http://127.0.0.1:4000/graphql', subscriptionEndpoint: 'ws://127.0.0.1:4000/graphql', headers: {}, operations: [] },
      'n0nce',
      null,
    );
    assert.match(page, /npm run explorer:build/);
    assert.doesNotMatch(page, /<script/);
  });

  test('POST /graphql, /healthz, /readyz and /metrics are unchanged; other methods on / are 404', async () => {
    const result = await postGraphQL(gateway.url, '{ __typename }');
    assert.deepEqual(result.data, { __typename: 'Query' });
    const health = await fetch(`${origin(gateway)}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(((await health.json()) as any).status, 'ok');
    const ready = await fetch(`${origin(gateway)}/readyz`);
    assert.match(ready.headers.get('content-type') ?? '', /application\/json/);
    assert.ok('checks' in ((await ready.json()) as any));
    const metrics = await fetch(`${origin(gateway)}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    await metrics.body?.cancel();
    const post = await fetch(`${origin(gateway)}/`, { method: 'POST', body: '{}' });
    assert.equal(post.status, 404);
    await post.body?.cancel();
  });
});

describe('Sandbox behind a proxy: PUBLIC_GATEWAY_URL', () => {
  test('names the public URL, and wss:// for https, instead of the bound address', async () => {
    const config = isolatedConfig({ PUBLIC_GATEWAY_URL: 'https://shop.example.test/api/graphql' });
    await using gateway = await startGateway({ config, port: 0 });
    const options = embeddedOptions(await (await fetch(`${origin(gateway)}/`)).text());
    assert.equal(options.initialEndpoint, 'https://shop.example.test/api/graphql');
    assert.equal(options.initialSubscriptionEndpoint, 'wss://shop.example.test/api/graphql');
    assert.equal(gateway.sandboxUrl, 'https://shop.example.test/api/');
    assert.equal(gateway.url, `http://127.0.0.1:${gateway.port}/graphql`, 'the gateway itself still listens where it did');
  });

  test('a value that is not an http(s) URL fails start-up with a ConfigError naming the variable', async () => {
    for (const value of ['shop.example.test/graphql', 'ftp://shop.example.test/graphql']) {
      await assert.rejects(startGateway({ config: isolatedConfig({ PUBLIC_GATEWAY_URL: value }), port: 0 }), (error: Error) => {
        assert.ok(error instanceof ConfigError, error.message);
        assert.match(error.message, /PUBLIC_GATEWAY_URL/);
        assert.ok(error.message.includes(value));
        return true;
      });
    }
  });
});

describe('Sandbox in production', () => {
  test('there is no landing page at / or /graphql, and no token in any response', async () => {
    // PUBLIC_GATEWAY_URL is read in production too: its origin is one the gateway accepts (origins.ts).
    const config = isolatedConfig({
      NODE_ENV: 'production',
      JWT_SECRET: PRODUCTION_SECRET,
      LOG_LEVEL: 'silent',
      PUBLIC_GATEWAY_URL: 'https://api.example.com/graphql',
    });
    await using gateway = await startGateway({ config, port: 0 });
    assert.equal(gateway.sandboxUrl, null);
    const bodies: string[] = [];
    for (const [url, method] of [
      [`${origin(gateway)}/`, 'GET'],
      [`${origin(gateway)}/`, 'HEAD'],
      [gateway.url, 'GET'],
      [`${origin(gateway)}${EXPLORER_PATH}`, 'GET'],
      [`${origin(gateway)}${EXPLORER_PATH}/assets/main.js`, 'GET'],
    ] as const) {
      const response = await fetch(url, { method, headers: { accept: 'text/html' }, redirect: 'manual' });
      assert.doesNotMatch(response.headers.get('content-type') ?? '', /text\/html/, `${method} ${url}`);
      if (url !== gateway.url) assert.equal(response.status, 404, `${method} ${url}`);
      bodies.push(await response.text());
    }
    assert.doesNotMatch(bodies.join('\n'), /EmbeddedSandbox|Bearer|eyJ[\w-]+\.[\w-]+\./, 'no Sandbox and no token');
    const health = await (await fetch(`${origin(gateway)}/healthz`)).json();
    assert.deepEqual(health, { status: 'ok' }, 'production /healthz says nothing about the process');
  });
});

describe('sandboxEndpoints', () => {
  test('follows the bound host and port; a wildcard bind address becomes loopback; IPv6 is bracketed', () => {
    assert.deepEqual(sandboxEndpoints({ host: '127.0.0.1', port: 4000 }), {
      endpoint: 'http://127.0.0.1:4000/graphql',
      subscriptionEndpoint: 'ws://127.0.0.1:4000/graphql',
    });
    assert.deepEqual(sandboxEndpoints({ host: 'localhost', port: 5123 }), {
      endpoint: 'http://localhost:5123/graphql',
      subscriptionEndpoint: 'ws://localhost:5123/graphql',
    });
    assert.equal(sandboxEndpoints({ host: '0.0.0.0', port: 4000 }).endpoint, 'http://127.0.0.1:4000/graphql');
    assert.equal(sandboxEndpoints({ host: '::', port: 4000 }).subscriptionEndpoint, 'ws://[::1]:4000/graphql');
    assert.equal(sandboxEndpoints({ host: '::1', port: 4000 }).endpoint, 'http://[::1]:4000/graphql');
    assert.deepEqual(sandboxEndpoints({ host: '0.0.0.0', port: 4000, publicUrl: 'http://localhost:8080/graphql' }), {
      endpoint: 'http://localhost:8080/graphql',
      subscriptionEndpoint: 'ws://localhost:8080/graphql',
    });
  });
});

describe("the page's token", () => {
  test('is signed once at start and renewed once half of its lifetime has passed', async () => {
    const secret = isolatedConfig().jwtSecret;
    let now = Date.now();
    const sandbox = await createSandbox({ jwtSecret: secret, endpoints: () => sandboxEndpoints({ host: '127.0.0.1', port: 4000 }), now: () => now });
    const header = async () => embeddedOptions(await sandbox.html()).initialState.headers.Authorization as string;
    const first = await header();
    // JWT times are in seconds: wait for the next one, so that a new token would differ.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    assert.equal(await header(), first, 'the same token while it is fresh');
    now += (DEMO_TOKEN_LIFETIME_SECONDS * 1000) / 2 - 1;
    assert.equal(await header(), first);
    now += 2;
    const renewed = await header();
    assert.notEqual(renewed, first);
    assert.ok(claims(renewed).iat > claims(first).iat);
    assert.deepEqual(await viewerFromAuthorization(renewed, secret), {
      customerId: 'demo-customer',
      roles: ['customer'],
      expiresAt: claims(renewed).exp * 1000,
    });
    assert.equal(await header(), renewed);
  });
});
