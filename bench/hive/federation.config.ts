/**
 * Hive Gateway's configuration for `npm run bench -- gateway` (bench/federation/gateways.ts starts
 * `hive-gateway supergraph <file> [--jit] -c bench/hive/federation.config.ts` with
 * BENCH_HIVE_VARIANT set). The supergraph file carries the replay server's routing URLs, so no
 * transport entry needs a location. The three variants:
 *
 * - `default`: nothing set, Hive Gateway as a user starts it. Upstream in-flight deduplication is
 *   on by default (@graphql-tools/executor-http deduplicates identical concurrent subgraph
 *   queries unless `deduplicateInflightRequests: false`); inbound deduplication is off.
 * - `public`: as the public federation benchmark runs it (graphql-hive/graphql-gateways-benchmark,
 *   gateways/hive-gateway: `hive-gateway supergraph supergraph.graphql --jit` with NODE_ENV=production
 *   and a gateway.config.ts of `{ inboundInflightRequestDeduplication: true, jit: true }`):
 *   graphql-jit, identical concurrent client requests share one execution (inbound), and upstream
 *   deduplication at its default (on).
 * - `nodedup`: graphql-jit, and no deduplication either way: every client request executes and
 *   every subgraph fetch is sent.
 */
import { defineConfig } from '@graphql-hive/gateway';

const variant = process.env.BENCH_HIVE_VARIANT ?? 'default';
if (!['default', 'public', 'nodedup'].includes(variant)) throw new Error(`BENCH_HIVE_VARIANT must be default, public or nodedup, got "${variant}"`);

export const gatewayConfig = defineConfig(
  variant === 'public'
    ? { inboundInflightRequestDeduplication: true, jit: true }
    : variant === 'nodedup'
      ? { jit: true, transportEntries: { '*': { options: { deduplicateInflightRequests: false } } } }
      : {},
);
