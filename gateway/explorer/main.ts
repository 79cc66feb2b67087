/**
 * The offline explorer: GraphiQL (the `graphiql` packages from npm, with Monaco's workers), bundled
 * by Vite into `gateway/explorer/dist` and served by the gateway itself, so it works where Apollo
 * Sandbox's CDN cannot be reached. The page that loads this script names the endpoints, the token
 * and the example operations in a JSON element (wire.ts).
 */
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { type Fetcher, createGraphiQLFetcher } from '@graphiql/toolkit';
import { type DocumentNode, Kind, parse } from 'graphql';
import { CONFIG_ELEMENT_ID, type ExplorerConfig, MOUNT_ELEMENT_ID } from './wire.ts';

const configElement = document.getElementById(CONFIG_ELEMENT_ID);
const mount = document.getElementById(MOUNT_ELEMENT_ID);
if (!configElement?.textContent || !mount) throw new Error(`the page must hold #${CONFIG_ELEMENT_ID} and #${MOUNT_ELEMENT_ID}`);
const config = JSON.parse(configElement.textContent) as ExplorerConfig;
const headers = JSON.stringify(config.headers, null, 2);

// The toolkit sends the headers editor's contents with every HTTP request and, for a subscription,
// as graphql-ws connectionParams: where the gateway reads a subscriber's token.
const toolkitFetcher = createGraphiQLFetcher({ url: config.endpoint, subscriptionUrl: config.subscriptionEndpoint });

/**
 * GraphiQL 5.4 keeps the operation name (and parsed document) of the tab it showed before until the
 * editor is edited, so Run in a freshly opened example tab would send "Products" with the
 * PlaceOrder document, and a subscription would go over HTTP (the toolkit picks the transport by
 * that name). The fetcher therefore reads the document it is given: when it holds one operation,
 * that operation is the one sent.
 */
const fetcher: Fetcher = (params, options) => {
  let documentAST: DocumentNode;
  try {
    documentAST = parse(params.query);
  } catch {
    return toolkitFetcher(params, options); // the server says what is wrong with it
  }
  const operations = documentAST.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  const operationName = operations.length === 1 ? (operations[0].name?.value ?? null) : params.operationName;
  return toolkitFetcher({ ...params, operationName }, { ...options, documentAST });
};

createRoot(mount).render(
  createElement(GraphiQL, {
    fetcher,
    defaultTabs: config.operations.map((operation) => ({ query: operation.document, variables: JSON.stringify(operation.variables, null, 2), headers })),
    defaultHeaders: headers,
    // Tabs and headers last as long as the browser tab: a reload keeps the work, and a new visit
    // starts from the page's current token (it expires) rather than one stored days ago.
    storage: window.sessionStorage,
    shouldPersistHeaders: true,
  }),
);
