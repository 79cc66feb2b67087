/**
 * What the gateway's page and the explorer's bundle agree on: where the page puts the explorer's
 * configuration and where the explorer draws itself. Imported by both sides (gateway/src/explorer.ts
 * on Node, main.ts in the browser), so it holds no code for either.
 */

/** The id of the page's `<script type="application/json">` element that holds {@link ExplorerConfig}. */
export const CONFIG_ELEMENT_ID = 'swiftcart-explorer-config';

/** The id of the element the explorer renders into. */
export const MOUNT_ELEMENT_ID = 'swiftcart-explorer';

/** One example operation: a tab of its own in GraphiQL. */
export interface ExampleOperation {
  /** The operation's name, which GraphiQL shows as the tab's title. */
  readonly name: string;
  /** The document: comments and one operation. */
  readonly document: string;
  /** The variables it declares, with values that work on the seed catalogue. */
  readonly variables: Readonly<Record<string, unknown>>;
}

/** How the page configures the explorer. */
export interface ExplorerConfig {
  /** Queries and mutations (HTTP POST), e.g. `http://127.0.0.1:4000/graphql`. */
  readonly endpoint: string;
  /** Subscriptions over graphql-ws, e.g. `ws://127.0.0.1:4000/graphql`. */
  readonly subscriptionEndpoint: string;
  /** Request headers (the development token), also sent as graphql-ws `connectionParams`. */
  readonly headers: Readonly<Record<string, string>>;
  /** The tabs a first visit opens with. */
  readonly operations: readonly ExampleOperation[];
}
