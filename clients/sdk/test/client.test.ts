/**
 * The SDK's HTTP path and error mapping against a scripted `fetch` (no servers): what a request
 * looks like on the wire, the token source asked per request, and each failure's SwiftCartError.
 * The live path and the real gateway are covered by sdk.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  type BusyNotice,
  type FetchInit,
  type FetchLike,
  type SwiftCartClient,
  ClientErrorCode,
  ErrorCode,
  SwiftCartError,
  busyDelayMs,
  createClient,
  isSwiftCartError,
  webSocketUrlOf,
} from '../src/index.ts';
import { liveError } from '../src/live.ts';
import { DOCUMENT_IDS } from '../src/generated/document-ids.ts';
import { parse } from 'graphql';

const URL = 'https://shop.example/graphql';

/** A `fetch` that records its calls and answers with `answer(call)`. */
function scriptedFetch(answer: (init: FetchInit) => { status?: number; body: string } | Promise<never>) {
  const calls: { url: string; init: FetchInit }[] = [];
  const fetch: FetchLike = async (url, init) => {
    calls.push({ url, init });
    const { status = 200, body } = await answer(init);
    return { status, ok: status >= 200 && status < 300, text: async () => body };
  };
  return { fetch, calls };
}

async function rejection(promise: Promise<unknown>): Promise<SwiftCartError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SwiftCartError, `expected a SwiftCartError, got ${error}`);
    return error;
  }
  assert.fail('expected the call to fail');
}

/** Compile-time checks only (never called): the methods are typed by the operations. */
export async function typeChecks(client: SwiftCartClient): Promise<void> {
  const page = await client.browseProducts();
  const cursor: string | null = page.products.pageInfo.endCursor;
  const available: number = page.products.edges[0].node.stock.available;
  // @ts-expect-error placeOrder needs its input
  await client.placeOrder();
  // @ts-expect-error an unknown variable
  await client.product({ sku: 'A', colour: 'red' });
  const order = await client.order({ id: 'x' });
  // @ts-expect-error order may be null
  void order.order.status;
  for await (const change of client.stockLevelChanged({ skus: ['A'] })) {
    const version: number = change.stockLevelChanged.version;
    void version;
  }
  // @ts-expect-error orderUpdated needs the order id
  client.orderUpdated();
  void cursor;
  void available;
}

describe('the SDK over HTTP', () => {
  it('POSTs the operation as JSON with its name, variables and the bearer token, and resolves to data', async () => {
    const { fetch, calls } = scriptedFetch(() => ({ body: JSON.stringify({ data: { product: { sku: 'A-1', name: 'A' } } }) }));
    const client = createClient({ url: URL, token: 'tkn', fetch, trustedDocuments: false });
    const data = await client.product({ sku: 'A-1' });
    assert.deepEqual(data, { product: { sku: 'A-1', name: 'A' } });
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, URL);
    assert.equal(calls[0].init.method, 'POST');
    assert.equal(calls[0].init.headers['content-type'], 'application/json');
    assert.equal(calls[0].init.headers.authorization, 'Bearer tkn');
    const body = JSON.parse(calls[0].init.body);
    assert.equal(body.operationName, 'Product');
    assert.deepEqual(body.variables, { sku: 'A-1' });
    assert.match(body.query, /^query Product\(\$sku: ID!\)/);
    assert.match(body.query, /fragment ProductSummary on Product/, 'fragments travel with the operation');
  });

  it('sends its own documents by trusted-document id alone, and the document only when the gateway does not know the id', async () => {
    const answers = [
      { body: JSON.stringify({ data: { product: null } }) },
      { body: JSON.stringify({ errors: [{ message: 'PersistedQueryNotFound', extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' } }] }) },
      { body: JSON.stringify({ data: { product: { sku: 'A-1' } } }) },
    ];
    const { fetch, calls } = scriptedFetch(() => answers.shift()!);
    const client = createClient({ url: URL, fetch });
    await client.product({ sku: 'A-1' });
    const first = JSON.parse(calls[0].init.body);
    assert.equal(first.query, undefined);
    assert.deepEqual(first.extensions, { persistedQuery: { version: 1, sha256Hash: DOCUMENT_IDS.Product } });
    assert.equal(first.operationName, 'Product');
    assert.ok(calls[0].init.body.length < 250, `${calls[0].init.body.length} bytes`);
    // An older gateway: PERSISTED_QUERY_NOT_FOUND, then the document with its id (to register it).
    assert.deepEqual(await client.product({ sku: 'A-1' }), { product: { sku: 'A-1' } });
    assert.equal(calls.length, 3);
    const [second, third] = [JSON.parse(calls[1].init.body), JSON.parse(calls[2].init.body)];
    assert.equal(second.query, undefined);
    assert.match(third.query, /^query Product\(\$sku: ID!\)/);
    assert.equal(third.extensions.persistedQuery.sha256Hash, DOCUMENT_IDS.Product);
    // A document of the caller's goes as text, whatever its name.
    await client.request(parse('query Product { __typename }') as never).catch(() => undefined);
    assert.equal(JSON.parse(calls[3].init.body).extensions, undefined);
  });

  it('asks a token function before every request, and sends no header without a token', async () => {
    const { fetch, calls } = scriptedFetch(() => ({ body: JSON.stringify({ data: { myOrders: null } }) }));
    let current: string | null = null;
    const client = createClient({ url: URL, token: async () => current, fetch });
    await client.myOrders();
    current = 'signed-in';
    await client.myOrders({ first: 5 });
    assert.equal(calls[0].init.headers.authorization, undefined);
    assert.equal(calls[1].init.headers.authorization, 'Bearer signed-in');
    assert.deepEqual(JSON.parse(calls[0].init.body).variables, {}, 'variables may be left out when none is required');
  });

  it('throws SwiftCartError with the first extensions.code, every error, the status and partial data', async () => {
    const errors = [
      { message: 'no such sku', path: ['placeOrder'], extensions: { code: 'BAD_USER_INPUT', field: 'input.items[0].sku' } },
      { message: 'second', extensions: { code: 'FORBIDDEN' } },
    ];
    const { fetch } = scriptedFetch(() => ({ body: JSON.stringify({ data: null, errors }) }));
    const error = await rejection(createClient({ url: URL, fetch }).order({ id: 'x' }));
    assert.equal(error.code, ErrorCode.BadUserInput);
    assert.equal(error.message, 'no such sku');
    assert.equal(error.status, 200);
    assert.deepEqual(error.errors, errors);
    assert.equal(error.extensions.field, 'input.items[0].sku');
    assert.equal(error.name, 'SwiftCartError');
    assert.ok(isSwiftCartError(error, 'BAD_USER_INPUT') && !isSwiftCartError(error, 'FORBIDDEN'));
  });

  it('an error without a code counts as INTERNAL_SERVER_ERROR', async () => {
    const { fetch } = scriptedFetch(() => ({ body: JSON.stringify({ errors: [{ message: 'boom' }] }) }));
    assert.equal((await rejection(createClient({ url: URL, fetch }).order({ id: 'x' }))).code, 'INTERNAL_SERVER_ERROR');
  });

  it('names failures without GraphQL errors: HTTP_ERROR, BAD_RESPONSE, NETWORK_ERROR', async () => {
    const http = scriptedFetch(() => ({ status: 502, body: '<html>Bad gateway</html>' }));
    const httpError = await rejection(createClient({ url: URL, fetch: http.fetch }).browseProducts());
    assert.equal(httpError.code, ClientErrorCode.HttpError);
    assert.equal(httpError.status, 502);

    const empty = scriptedFetch(() => ({ status: 503, body: '{}' }));
    assert.equal((await rejection(createClient({ url: URL, fetch: empty.fetch }).browseProducts())).code, 'HTTP_ERROR');

    const garbage = scriptedFetch(() => ({ body: 'not json' }));
    const badResponse = await rejection(createClient({ url: URL, fetch: garbage.fetch }).browseProducts());
    assert.equal(badResponse.code, ClientErrorCode.BadResponse);
    assert.equal(badResponse.status, 200);

    const offline = scriptedFetch(() => Promise.reject(new TypeError('fetch failed')));
    const network = await rejection(createClient({ url: URL, fetch: offline.fetch }).browseProducts());
    assert.equal(network.code, ClientErrorCode.NetworkError);
    assert.equal(network.status, undefined);
    assert.equal((network.cause as Error).message, 'fetch failed');
  });

  it('an aborted request rejects with the abort reason, not a SwiftCartError', async () => {
    const controller = new AbortController();
    // Like the real fetch: rejects with the reason when the signal is (or becomes) aborted.
    const { fetch } = scriptedFetch(
      (init) =>
        new Promise<never>((_, reject) => {
          if (init.signal!.aborted) reject(init.signal!.reason);
          init.signal!.addEventListener('abort', () => reject(init.signal!.reason));
        }),
    );
    const pending = createClient({ url: URL, fetch }).searchProducts({ filter: { search: 'x' } }, { signal: controller.signal });
    controller.abort();
    await assert.rejects(pending, (error: Error) => error.name === 'AbortError' && !(error instanceof SwiftCartError));
  });

  it('uses the global fetch by default', async () => {
    const original = globalThis.fetch;
    const { fetch, calls } = scriptedFetch(() => ({ body: JSON.stringify({ data: { products: { edges: [] } } }) }));
    globalThis.fetch = fetch as unknown as typeof globalThis.fetch;
    try {
      assert.deepEqual(await createClient({ url: URL }).browseProducts({ first: 1 }), { products: { edges: [] } });
      assert.equal(calls.length, 1);
    } finally {
      globalThis.fetch = original;
    }
  });
});

describe('the SDK over graphql-ws', () => {
  it('derives the WebSocket URL from the HTTP one', () => {
    assert.equal(webSocketUrlOf('http://127.0.0.1:4000/graphql'), 'ws://127.0.0.1:4000/graphql');
    assert.equal(webSocketUrlOf('https://shop.example/graphql'), 'wss://shop.example/graphql');
  });

  it('maps what ends a subscription to SwiftCartError codes', () => {
    const refused = liveError({ code: 4403, reason: 'Forbidden' });
    assert.equal(refused.code, ErrorCode.Unauthenticated);
    assert.equal(refused.closeCode, 4403);
    const slow = liveError({ code: 1008, reason: 'Slow client: more than 256 messages waiting' });
    assert.equal(slow.code, ClientErrorCode.ConnectionClosed);
    assert.equal(slow.closeReason, 'Slow client: more than 256 messages waiting');
    const graphql = liveError([{ message: 'bad', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }]);
    assert.equal(graphql.code, 'GRAPHQL_VALIDATION_FAILED');
    assert.equal(liveError(new Error('socket hang up')).code, ClientErrorCode.NetworkError);
  });

  it('connects nothing until a subscription is read, and return() before that is harmless', async () => {
    const client = createClient({
      url: 'http://127.0.0.1:1/graphql',
      webSocketImpl: class {
        constructor() {
          throw new Error('must not connect');
        }
      },
    });
    const subscription = client.stockLevelChanged({ skus: ['A'] });
    assert.deepEqual(await subscription.return(), { done: true, value: undefined });
    assert.deepEqual(await subscription.next(), { done: true, value: undefined });
    await client.close();
  });
});

describe('the SDK error codes', () => {
  it('name every code the server emits: the platform, the gateway live path and the HTTP layer', async () => {
    // The SDK cannot import the server's packages (it runs in browsers), so the two lists are kept
    // apart on purpose; this test keeps them in step.
    const { ErrorCode: serverCodes } = await import('../../../platform/src/errors.ts');
    const { LiveErrorCode } = await import('../../../gateway/src/subscriptions.ts');
    const known = new Set<string>(Object.values(ErrorCode));
    const emitted = [...Object.values(serverCodes), ...Object.values(LiveErrorCode), 'GRAPHQL_PARSE_FAILED', 'BAD_REQUEST', 'PAYLOAD_TOO_LARGE'];
    assert.deepEqual(
      emitted.filter((code) => !known.has(code)),
      [],
    );
  });
});

describe('the SDK README', () => {
  it('shows examples/storefront.ts (typechecked, and run by sdk.test.ts) verbatim as its full example', () => {
    const readme = readFileSync(new globalThis.URL('../README.md', import.meta.url), 'utf8');
    const example = readFileSync(new globalThis.URL('../examples/storefront.ts', import.meta.url), 'utf8');
    const body = example.slice(example.indexOf('import '));
    assert.ok(body.length > 1_000);
    assert.ok(readme.includes(`\`\`\`ts\n${body}\`\`\``), 'README.md embeds the example: copy examples/storefront.ts (from its import) into it');
  });
});

describe('the SDK when the platform is busy', () => {
  const overloaded = (retryAfterSeconds: number) => ({
    status: 503,
    body: JSON.stringify({
      data: null,
      errors: [{ message: 'Too many orders are being processed right now', extensions: { code: 'OVERLOADED', retryAfterSeconds } }],
    }),
  });
  const placed = { status: 200, body: JSON.stringify({ data: { placeOrder: { id: 'o-1', status: 'PENDING' } } }) };
  const input = {
    idempotencyKey: 'k-1',
    items: [{ sku: 'A', quantity: 1 }],
    paymentMethod: 'tok_visa',
    shippingAddress: { name: 'A', line1: 'B', city: 'C', postalCode: 'D', country: 'DE' },
  };

  it('sends a refused (OVERLOADED, RATE_LIMITED) request again after the delay it was given, telling onBusy, and resolves', async () => {
    const answers = [
      overloaded(0),
      { status: 429, body: JSON.stringify({ errors: [{ message: 'slow down', extensions: { code: 'RATE_LIMITED', retryAfterSeconds: 0 } }] }) },
      placed,
    ];
    const { fetch, calls } = scriptedFetch(() => answers.shift()!);
    const notices: BusyNotice[] = [];
    const client = createClient({ url: URL, fetch, onBusy: (notice) => notices.push(notice) });
    const started = Date.now();
    const data = await client.placeOrder({ input } as never);
    assert.deepEqual(data, { placeOrder: { id: 'o-1', status: 'PENDING' } });
    assert.equal(calls.length, 3);
    assert.ok(
      calls.every((c) => c.init.body === calls[0].init.body),
      'the same request, idempotency key and all',
    );
    assert.deepEqual(
      notices.map((n) => [n.retry, n.error.code, n.operationName]),
      [
        [1, 'OVERLOADED', 'PlaceOrder'],
        [2, 'RATE_LIMITED', 'PlaceOrder'],
      ],
    );
    assert.ok(Date.now() - started >= notices[0].delayMs + notices[1].delayMs - 20, 'it waited before each retry');
  });

  it('gives up after busyRetries, or at once with 0, with the refusal as the error', async () => {
    const { fetch, calls } = scriptedFetch(() => overloaded(0));
    const none = await rejection(createClient({ url: URL, fetch, busyRetries: 0 }).placeOrder({ input } as never));
    assert.equal(none.code, ErrorCode.Overloaded);
    assert.equal(none.status, 503);
    assert.equal(calls.length, 1);
    const one = await rejection(createClient({ url: URL, fetch, busyRetries: 1 }).placeOrder({ input } as never));
    assert.equal(one.code, 'OVERLOADED');
    assert.equal(calls.length, 3);
    assert.throws(() => createClient({ url: URL, fetch, busyRetries: -1 }), TypeError);
  });

  it('waits what the server asks or the backoff, whichever is longer, with up to a quarter of jitter, never over 30 s', () => {
    const error = (retryAfterSeconds: number) => SwiftCartError.fromGraphQLErrors([{ message: 'busy', extensions: { code: 'OVERLOADED', retryAfterSeconds } }]);
    assert.equal(
      busyDelayMs(error(2), 1, () => 0),
      2_000,
    );
    assert.equal(
      busyDelayMs(error(2), 1, () => 1),
      2_500,
    );
    assert.equal(
      busyDelayMs(error(0), 1, () => 0),
      500,
    );
    assert.equal(
      busyDelayMs(error(0), 3, () => 0),
      2_000,
    );
    assert.equal(
      busyDelayMs(error(600), 1, () => 0),
      30_000,
    );
  });

  it('stops waiting when the caller aborts', async () => {
    const { fetch } = scriptedFetch(() => overloaded(20));
    const abort = new AbortController();
    const pending = createClient({ url: URL, fetch, onBusy: () => abort.abort(new Error('left the page')) }).placeOrder({ input } as never, {
      signal: abort.signal,
    });
    await assert.rejects(pending, /left the page/);
  });
});
