/**
 * Apollo Sandbox, preconfigured: the gateway's landing page outside production, served at `/` and
 * (Apollo's own behaviour) on `GET /graphql` with `Accept: text/html`.
 *
 * Apollo Server's `ApolloServerPluginLandingPageLocalDefault` cannot be used for this: its page
 * hard-codes `initialEndpoint = window.location.href` (so served at `/` it would target `/`) and it
 * has no option for the subscription endpoint. This module serves the same embed (the same
 * `EmbeddedSandbox` script from Apollo's CDN, version {@link DEFAULT_EMBEDDED_SANDBOX_VERSION} as
 * Apollo Server uses) with every setting explicit: the endpoint, the subscription endpoint, a
 * development token in the `Authorization` header and an example operation. The options are those
 * of `EmbeddableSandboxOptions` in `@apollo/sandbox` 2.7. Where the browser cannot load Sandbox
 * from the CDN, the same page opens the offline explorer (explorer.ts), set up the same way.
 *
 * Never used in production: there the landing page is disabled and no token is signed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { DEFAULT_EMBEDDED_SANDBOX_VERSION } from '@apollo/server/plugin/landingPage/default';
import { type Role, signToken } from '@swiftcart/platform/auth';
import { invalid, parseSettings, setting, z } from '@swiftcart/platform/settings';
import { PATHS } from '@swiftcart/platform/http';
import {
  EXPLORER_PATH,
  type Explorer,
  type ExplorerAssets,
  type ExplorerConfig,
  MOUNT_ELEMENT_ID,
  createExplorer,
  escapeHtml,
  explorerAssets,
  explorerCsp,
  explorerElements,
  htmlPage,
  NOT_BUILT_HINT,
  sendPage,
  scriptJson,
} from './explorer.ts';
import type { ExampleOperation } from '../explorer/wire.ts';

/** Where the landing page is served (besides `GET /graphql` accepting HTML). */
export const SANDBOX_PATH = '/';

/** Whom the page's development token is for: a customer, so customer operations work at once. */
export const DEMO_CUSTOMER: { readonly sub: string; readonly roles: readonly Role[] } = Object.freeze({
  sub: 'demo-customer',
  roles: Object.freeze(['customer'] as const),
});

/** Lifetime of the page's token: a working day. A new one is signed when half of it has passed. */
export const DEMO_TOKEN_LIFETIME_SECONDS = 12 * 60 * 60;

/** Environment variable: the gateway's public GraphQL URL when it is reached through a proxy. */
export const PUBLIC_GATEWAY_URL = 'PUBLIC_GATEWAY_URL';

/** The subscription protocol the gateway speaks: graphql-ws, whose WebSocket subprotocol is this. */
export const SUBSCRIPTION_SUBPROTOCOL = 'graphql-transport-ws';

const SANDBOX_SCRIPT = `https://embeddable-sandbox.cdn.apollographql.com/${DEFAULT_EMBEDDED_SANDBOX_VERSION}/embeddable-sandbox.umd.production.min.js`;
const SANDBOX_FRAME_ORIGIN = 'https://sandbox.embed.apollographql.com';
/** The embed adds a favicon from here when the page has none. */
const FAVICON_ORIGIN = 'https://embeddable-explorer.cdn.apollographql.com';

/** Where Sandbox sends operations. */
export interface SandboxEndpoints {
  /** Queries and mutations (and introspection), e.g. `http://127.0.0.1:4000/graphql`. */
  readonly endpoint: string;
  /** Subscriptions over graphql-ws, e.g. `ws://127.0.0.1:4000/graphql`. */
  readonly subscriptionEndpoint: string;
}

/**
 * The URLs the page names. By default, the address the gateway is bound to (`host`, `port`: the
 * real port, also when 0 was asked for) with path `/graphql`; a wildcard bind address (`0.0.0.0`,
 * `::`) is not one a browser can open, so it becomes the loopback address. `publicUrl` (from
 * {@link publicGatewayUrl}) replaces both when the browser reaches the gateway through a proxy.
 * The subscription endpoint is always the same URL with `ws:` (`wss:` for `https:`).
 */
export function sandboxEndpoints(options: { host: string; port: number; publicUrl?: string }): SandboxEndpoints {
  let endpoint: URL;
  if (options.publicUrl) {
    endpoint = new URL(options.publicUrl);
  } else {
    const host = options.host === '0.0.0.0' || options.host === '' ? '127.0.0.1' : options.host === '::' ? '::1' : options.host;
    endpoint = new URL(`http://${host.includes(':') ? `[${host}]` : host}:${options.port}${PATHS.graphql}`);
  }
  const subscription = new URL(endpoint);
  subscription.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  return { endpoint: endpoint.href, subscriptionEndpoint: subscription.href };
}

/** {@link PUBLIC_GATEWAY_URL}, declared here and part of the gateway's settings (settings.ts). */
export const publicUrlSettings = z.object({
  [PUBLIC_GATEWAY_URL]: setting(
    (raw): string | undefined => {
      const value = raw?.trim();
      if (!value) return undefined;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return invalid(`must be an absolute URL such as https://api.example.com/graphql, got "${value}"`);
      }
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : invalid(`must use http: or https:, got "${value}"`);
    },
    { default: 'the address the gateway binds', accepts: 'an absolute `http:` or `https:` URL' },
  ).describe(
    "the GraphQL URL as a browser reaches it (behind a proxy, in Docker), e.g. `https://shop.example.com/graphql`: Sandbox's endpoint, and with `ws:`/`wss:` its subscription endpoint; its origin is always allowed",
  ),
});

/**
 * Reads {@link PUBLIC_GATEWAY_URL} (an absolute http or https URL of the GraphQL endpoint, such as
 * `https://api.example.com/graphql`); undefined when unset. Throws a `ConfigError` naming
 * the variable for anything else.
 */
export function publicGatewayUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  return parseSettings(publicUrlSettings, env)[PUBLIC_GATEWAY_URL];
}

/** What the editor opens with, above the examples: where things go, and whose token the headers hold. */
const EXAMPLE_INTRO = `# SwiftCart: queries, mutations and subscriptions all go to this endpoint.
# Put the cursor in an operation and press Run. The Authorization header (Headers panel) holds a
# development token for the customer "demo-customer"; admin mutations need an admin token:
#   npm run token -- --sub admin --roles admin
`;

/**
 * The example operations: a query, a mutation and two subscriptions, each with variables that work
 * on the seed catalogue. Sandbox opens them as one document ({@link EXAMPLE_DOCUMENT}); the offline
 * explorer opens each in a tab of its own.
 */
export const EXAMPLE_OPERATIONS: readonly ExampleOperation[] = Object.freeze([
  {
    name: 'Products',
    document: `query Products {
  products(first: 5) {
    totalCount
    edges {
      node {
        sku
        name
        price { amount currency }
        stock { available version }
      }
    }
  }
}
`,
    variables: {},
  },
  {
    name: 'PlaceOrder',
    document: `# The order starts PENDING; the saga moves it on. A new idempotencyKey places a new order.
mutation PlaceOrder($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    id
    status
    version
    total { amount currency }
    items { sku quantity }
  }
}
`,
    variables: {
      input: {
        idempotencyKey: 'sandbox-order-1',
        items: [{ sku: 'SKU-0001', quantity: 1 }],
        shippingAddress: { name: 'Demo Customer', line1: '1 Example Street', city: 'Berlin', postalCode: '10115', country: 'DE' },
        paymentMethod: 'tok_visa',
      },
    },
  },
  {
    name: 'StockChanges',
    document: `# Subscriptions run over graphql-ws on the same URL. The current state arrives first, then every
# change: place an order or adjust stock in another tab to see one.
subscription StockChanges($skus: [ID!]!) {
  stockLevelChanged(skus: $skus) {
    sku
    available
    version
    product { name }
  }
}
`,
    variables: { skus: ['SKU-0001', 'SKU-0002'] },
  },
  {
    name: 'OrderUpdates',
    document: `# Set orderId to the id that PlaceOrder returned.
subscription OrderUpdates($orderId: ID!) {
  orderUpdated(id: $orderId) {
    id
    status
    version
    timeline { status at reason }
    payment { status }
    shipment { status }
  }
}
`,
    variables: { orderId: 'paste the id that PlaceOrder returned' },
  },
]);

/** Sandbox's document: every example operation; Sandbox runs the one the cursor is in. */
export const EXAMPLE_DOCUMENT = `${EXAMPLE_INTRO}\n${EXAMPLE_OPERATIONS.map((operation) => operation.document).join('\n')}`;

/** Variables for {@link EXAMPLE_DOCUMENT}; each operation uses the ones it declares. */
export const EXAMPLE_VARIABLES: Readonly<Record<string, unknown>> = Object.freeze(
  Object.assign({}, ...EXAMPLE_OPERATIONS.map((operation) => operation.variables)),
);

/**
 * The offline explorer's configuration (explorer.ts): the same endpoints, token and examples as
 * Sandbox's; the first tab carries the introduction.
 */
export function explorerConfig(endpoints: SandboxEndpoints, token: string): ExplorerConfig {
  return {
    endpoint: endpoints.endpoint,
    subscriptionEndpoint: endpoints.subscriptionEndpoint,
    headers: { Authorization: `Bearer ${token}` },
    operations: EXAMPLE_OPERATIONS.map((operation, index) => (index === 0 ? { ...operation, document: `${EXAMPLE_INTRO}\n${operation.document}` } : operation)),
  };
}

/** The options of `new window.EmbeddedSandbox(...)` that the page sets (`EmbeddableSandboxOptions`). */
export interface EmbeddedSandboxOptions {
  readonly target: string;
  readonly initialEndpoint: string;
  readonly initialSubscriptionEndpoint: string;
  readonly initialState: {
    readonly document: string;
    readonly variables: Readonly<Record<string, unknown>>;
    readonly headers: Readonly<Record<string, string>>;
    readonly includeCookies: boolean;
  };
  readonly endpointIsEditable: boolean;
  readonly runTelemetry: boolean;
  readonly allowDynamicStyles: boolean;
}

/**
 * The landing page's configuration: Sandbox pointed at `endpoints`, with `Authorization: Bearer
 * <token>` in its Headers panel (Sandbox also sends its headers as graphql-ws `connectionParams`,
 * which is where the gateway reads a subscriber's token) and the example operation loaded.
 * Cookies are off (the API uses bearer tokens), the endpoint is fixed to this gateway, Sandbox's
 * telemetry is off, and the iframe is sized by the page's stylesheet rather than by styles Sandbox
 * would write into the page.
 */
export function sandboxOptions(endpoints: SandboxEndpoints, token: string): EmbeddedSandboxOptions {
  return {
    target: '#embeddableSandbox',
    initialEndpoint: endpoints.endpoint,
    initialSubscriptionEndpoint: endpoints.subscriptionEndpoint,
    initialState: {
      document: EXAMPLE_DOCUMENT,
      variables: EXAMPLE_VARIABLES,
      headers: { Authorization: `Bearer ${token}` },
      includeCookies: false,
    },
    endpointIsEditable: false,
    runTelemetry: false,
    allowDynamicStyles: false,
  };
}

/** How long the page waits for Sandbox's script before it opens the offline explorer instead. */
export const SANDBOX_LOAD_TIMEOUT_MS = 8_000;

/**
 * The landing page: Apollo's embedded Sandbox with `options`. When Sandbox's script cannot be
 * loaded (an error, or nothing within {@link SANDBOX_LOAD_TIMEOUT_MS}), the same page loads the
 * offline explorer (explorer.ts, `assets`) with `explorer`, or says how to build it when it is not
 * built. The Content-Security-Policy allows the page's nonce'd scripts, the gateway's own files,
 * Sandbox's script and Sandbox's iframe.
 */
export function renderSandboxPage(options: EmbeddedSandboxOptions, explorer: ExplorerConfig, nonce: string, assets: ExplorerAssets | null): string {
  // Sandbox's script runs in this page and makes requests of its own for its iframe: connections and
  // fonts stay as open as they were before the explorer came; scripts, frames and images do not.
  const csp = explorerCsp(explorer, nonce, {
    'default-src': null,
    'connect-src': null,
    'font-src': null,
    'script-src': [new URL(SANDBOX_SCRIPT).origin],
    'frame-src': [SANDBOX_FRAME_ORIGIN],
    'img-src': [FAVICON_ORIGIN],
  });
  const unbuilt = assets ? '' : `\n      <p>The offline explorer is not built yet: ${NOT_BUILT_HINT}</p>`;
  return htmlPage({
    title: 'SwiftCart · Apollo Sandbox',
    csp,
    style: `
      body { margin: 0; overflow: hidden; font-family: system-ui, sans-serif; }
      .fallback { padding: 1em; opacity: 0; animation: fade-in 1s 1s forwards; }
      @keyframes fade-in { to { opacity: 1; } }
      #embeddableSandbox, #${MOUNT_ELEMENT_ID} { position: absolute; inset: 0; }
      #embeddableSandbox:empty, #${MOUNT_ELEMENT_ID}:empty { display: none; }
      #embeddableSandbox iframe { width: 100%; height: 100%; border: none; background: white; }`,
    body: `<div class="fallback">
      <h1>SwiftCart · Apollo Sandbox</h1>
      <p>Sandbox loads from Apollo's CDN; this browser does not seem to reach it. The offline explorer opens instead: <a href="${EXPLORER_PATH.slice(1)}">${EXPLORER_PATH}</a>.</p>${unbuilt}
      <ul>
        <li>Queries and mutations: <code>${escapeHtml(options.initialEndpoint)}</code> (HTTP POST)</li>
        <li>Subscriptions: <code>${escapeHtml(options.initialSubscriptionEndpoint)}</code>, graphql-ws (WebSocket subprotocol <code>${SUBSCRIPTION_SUBPROTOCOL}</code>)</li>
      </ul>
    </div>
    <div id="embeddableSandbox"></div>
    ${explorerElements(explorer)}
    <script nonce="${nonce}">
      var sandboxOptions = ${scriptJson(options)};
      var explorerAssets = ${scriptJson(assets)};
      var settled = false;
      function openExplorer() {
        if (settled) return;
        settled = true;
        if (!explorerAssets) return;
        document.title = 'SwiftCart · GraphiQL';
        explorerAssets.styles.forEach(function (href) {
          var link = document.createElement('link');
          link.rel = 'stylesheet';
          link.href = href;
          document.head.appendChild(link);
        });
        var script = document.createElement('script');
        script.type = 'module';
        script.nonce = ${JSON.stringify(nonce)};
        script.src = explorerAssets.script;
        script.onerror = function () {
          document.querySelector('.fallback p').textContent = 'Neither Sandbox nor the offline explorer could be loaded: reload the page.';
        };
        document.body.appendChild(script);
      }
      function openSandbox() {
        if (settled) return;
        if (!window.EmbeddedSandbox) return openExplorer();
        settled = true;
        new window.EmbeddedSandbox(sandboxOptions);
      }
      var sandboxScript = document.createElement('script');
      sandboxScript.nonce = ${JSON.stringify(nonce)};
      sandboxScript.src = ${JSON.stringify(SANDBOX_SCRIPT)};
      sandboxScript.onload = openSandbox;
      sandboxScript.onerror = openExplorer;
      setTimeout(openExplorer, ${SANDBOX_LOAD_TIMEOUT_MS});
      document.head.appendChild(sandboxScript);
    </script>`,
  });
}

/** The landing page, ready to serve: as an Apollo plugin and as the `/` route, with the offline explorer. */
export interface Sandbox {
  /** Apollo's landing page for `GET /graphql` accepting HTML. */
  readonly plugin: ApolloServerPlugin<BaseContext>;
  /** Serves the page on GET and HEAD; anything else falls through (404). */
  route(req: IncomingMessage, res: ServerResponse): Promise<boolean | void>;
  /** The offline explorer at {@link EXPLORER_PATH}, with the same endpoints, token and examples. */
  readonly explorer: Explorer;
  /** The page as served now. */
  html(): Promise<string>;
}

/**
 * Signs the development token for {@link DEMO_CUSTOMER} with `jwtSecret` now (so a bad secret
 * fails start-up), and returns the landing page. `endpoints` is asked on every request, so it can
 * depend on the port bound after this is called. `buildExplorer` builds the offline explorer in the
 * background when it is missing or stale (the gateway process does; tests build it themselves).
 * `now` is for tests.
 */
export async function createSandbox(options: {
  jwtSecret: string;
  endpoints: () => SandboxEndpoints;
  buildExplorer?: boolean;
  log?: (level: 'info' | 'warn', msg: string) => void;
  now?: () => number;
}): Promise<Sandbox> {
  const now = options.now ?? Date.now;
  const sign = () => signToken(options.jwtSecret, DEMO_CUSTOMER, `${DEMO_TOKEN_LIFETIME_SECONDS}s`);
  let token = await sign();
  let renewAt = now() + (DEMO_TOKEN_LIFETIME_SECONDS * 1000) / 2;
  let renewing: Promise<string> | null = null;
  const currentToken = async (): Promise<string> => {
    if (now() < renewAt) return token;
    renewing ??= sign()
      .then((fresh) => {
        token = fresh;
        renewAt = now() + (DEMO_TOKEN_LIFETIME_SECONDS * 1000) / 2;
        return fresh;
      })
      .finally(() => {
        renewing = null;
      });
    return renewing;
  };
  const nonce = () => randomBytes(16).toString('base64');
  const explorer = createExplorer({
    config: async () => explorerConfig(options.endpoints(), await currentToken()),
    nonce,
    build: options.buildExplorer,
    log: options.log,
  });
  const html = async () => {
    // A build under way (npm start's gateway, a stale bundle) is waited for, so the page names the files it will find.
    await explorer.built();
    const endpoints = options.endpoints();
    const current = await currentToken();
    return renderSandboxPage(sandboxOptions(endpoints, current), explorerConfig(endpoints, current), nonce(), explorerAssets());
  };
  return {
    html,
    explorer,
    plugin: {
      async serverWillStart() {
        return { renderLandingPage: async () => ({ html }) };
      },
    },
    async route(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      sendPage(req, res, await html());
    },
  };
}
