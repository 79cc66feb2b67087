/**
 * Hive Gateway's configuration for `npm run bench -- live` (bench/live.ts starts
 * `hive-gateway supergraph <snapshot of schema/supergraph.graphql> -c bench/hive/gateway.config.ts`).
 *
 * - Routing: the bench starts its own subgraph processes on free ports and passes them in
 *   BENCH_SUBGRAPH_URLS (JSON, subgraph name → http URL); each becomes that subgraph's transport
 *   entry `location`, overriding the supergraph's `@join__graph(url:)`.
 * - Subscriptions to subgraphs over graphql-ws: the `http` transport hands subscription operations
 *   to the transport kind named in `options.subscriptions.kind` (@graphql-mesh/transport-ws), at
 *   `options.subscriptions.location` resolved against the subgraph URL (the same /graphql path,
 *   http:// becoming ws://). Queries (the per-event entity fetches) stay on HTTP.
 * - The gateway credential: when SUBGRAPH_SECRET is set (the bench's subgraphs require it), it goes
 *   to every subgraph as a static header, on HTTP (`headers`) and on the graphql-ws upgrade
 *   (`options.subscriptions.headers`; Hive sends no HTTP headers over WebSocket unless told).
 * - Everything else is Hive Gateway's default, as a user would run it (the CLI watches a supergraph
 *   file for changes; the bench's is a snapshot that does not change), except logs at warn.
 */
import { defineConfig } from '@graphql-hive/gateway';
import { GATEWAY_CREDENTIAL_HEADER } from '../../platform/src/gateway-credential.ts';

const urls = JSON.parse(process.env.BENCH_SUBGRAPH_URLS || '{}') as Record<string, string>;
const headers: [string, string][] = process.env.SUBGRAPH_SECRET ? [[GATEWAY_CREDENTIAL_HEADER, process.env.SUBGRAPH_SECRET]] : [];

export const gatewayConfig = defineConfig({
  transportEntries: Object.fromEntries(
    Object.entries(urls).map(([name, location]) => [
      name,
      {
        location,
        headers,
        options: {
          subscriptions: {
            kind: 'ws',
            location: new URL(location).pathname,
            headers,
          },
        },
      },
    ]),
  ),
  logging: 'warn',
});
