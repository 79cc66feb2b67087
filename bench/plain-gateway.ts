/**
 * The baseline for `npm run bench -- gateway`: a plain `ApolloServer` over `new ApolloGateway({
 * supergraphSdl })` with `startStandaloneServer`, every setting at its default. Started by
 * bench/gateway.ts (`--stack`) or bench/federation/gateways.ts in a process of its own, so that its
 * memory and CPU are measured alone exactly like our gateway's. The additions, for `--stack`: when
 * PRODUCT_URL... overrides are set, `buildService` routes there with a default
 * `RemoteGraphQLDataSource`, so both gateways call the same subgraphs; and when SUBGRAPH_SECRET is
 * set, it sends the gateway credential the subgraphs require, as ours does. The gateway-bound bench
 * sets neither: its supergraph routes to the replay server, which needs no credential.
 */
import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { GATEWAY_CREDENTIAL_HEADER } from '../platform/src/gateway-credential.ts';

/** IPC messages between this process and bench/gateway.ts. */
export type PlainGatewayMessage =
  | { readonly type: 'ready'; readonly url: string; readonly pid: number }
  | { readonly type: 'stats'; readonly pid: number; readonly rssBytes: number; readonly maxRssBytes: number; readonly cpuMicros: number };

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.send) {
    console.error('bench/plain-gateway.ts is started by bench/gateway.ts (it reports over IPC)');
    process.exit(2);
  }
  const supergraphPath = process.env.BENCH_SUPERGRAPH_PATH!;
  const overrides = JSON.parse(process.env.BENCH_SUBGRAPH_URLS || '{}') as Record<string, string>;
  const supergraphSdl = readFileSync(supergraphPath, 'utf8');
  const credential = process.env.SUBGRAPH_SECRET || null;
  const gateway = new ApolloGateway({
    supergraphSdl,
    ...(Object.keys(overrides).length || credential
      ? {
          buildService: ({ name, url }) =>
            new RemoteGraphQLDataSource({
              url: overrides[name!] ?? url,
              willSendRequest: credential
                ? ({ request }) => {
                    request.http!.headers.set(GATEWAY_CREDENTIAL_HEADER, credential);
                  }
                : undefined,
            }),
        }
      : {}),
  });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } });
  process.on('message', (message: { type: string }) => {
    if (message.type === 'stats') {
      const usage = process.resourceUsage();
      process.send!({
        type: 'stats',
        pid: process.pid,
        rssBytes: process.memoryUsage.rss(),
        maxRssBytes: usage.maxRSS * 1024,
        cpuMicros: usage.userCPUTime + usage.systemCPUTime,
      } satisfies PlainGatewayMessage);
    } else if (message.type === 'exit') {
      void server.stop().finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ type: 'ready', url, pid: process.pid } satisfies PlainGatewayMessage);
}
