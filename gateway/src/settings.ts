/**
 * The gateway's settings: every variable the gateway reads besides the platform's (`loadConfig`),
 * as one zod schema (platform/src/settings.ts). Each part is declared beside the code it sets; the
 * gateway parses the whole once at start-up, so a bad value stops it before anything starts and
 * every variable at fault is named at once. The README's table is generated from it.
 */
import { operationLimitSettings } from '@swiftcart/platform/limits';
import { integer, z } from '@swiftcart/platform/settings';
import { dedupSettings } from './dedup.ts';
import { entityBatchSettings } from './entity-batcher.ts';
import { DEFAULT_LIVE_SETTINGS, type LiveServerSettings } from './live-server.ts';
import { originSettings } from './origins.ts';
import { edgeRateLimitSettings, trustedProxySettings } from './rate-limits.ts';
import { publicUrlSettings } from './sandbox.ts';
import { trustedDocumentSettings } from './trusted-documents.ts';

/** The live endpoint's variables (`LIVE_*`), read into {@link LiveServerSettings}. */
export const liveEndpointSettings = z.object({
  LIVE_CLIENT_QUEUE_LIMIT: integer({ default: DEFAULT_LIVE_SETTINGS.queueLimit, min: 1, max: 1_000_000 }).describe(
    'messages one graphql-ws connection may have waiting before it is closed as too slow (1008)',
  ),
  LIVE_KEEP_ALIVE_MS: integer({ default: DEFAULT_LIVE_SETTINGS.keepAliveMs, min: 100, max: 3_600_000, unit: 'ms' }).describe(
    'gateway ping interval; a client that does not answer within it is dropped',
  ),
  LIVE_CONNECTION_INIT_TIMEOUT_MS: integer({ default: DEFAULT_LIVE_SETTINGS.connectionInitTimeoutMs, min: 100, max: 600_000, unit: 'ms' }).describe(
    'how long a new connection has to send `connection_init` (4408 otherwise)',
  ),
  LIVE_UPSTREAM_RETRY_ATTEMPTS: integer({ default: DEFAULT_LIVE_SETTINGS.upstreamRetryAttempts, min: 0, max: 1_000 }).describe(
    'reconnection attempts to a subgraph (about 30 s with jittered backoff) before its subscriptions end with `SUBSCRIPTION_UPSTREAM_FAILED`',
  ),
});

/** Everything the gateway reads of its own, in the order the README lists it. */
export const gatewaySettings = z.object({
  ...publicUrlSettings.shape,
  ...originSettings.shape,
  ...trustedProxySettings.shape,
  ...operationLimitSettings.shape,
  ...trustedDocumentSettings.shape,
  ...edgeRateLimitSettings.shape,
  ...liveEndpointSettings.shape,
  ...dedupSettings.shape,
  ...entityBatchSettings.shape,
});

/** The parsed {@link gatewaySettings}. */
export type GatewaySettings = z.output<typeof gatewaySettings>;

/** The live endpoint's settings; `overrides` (tests) win. */
export function liveSettingsOf(settings: z.output<typeof liveEndpointSettings>, overrides: Partial<LiveServerSettings> = {}): LiveServerSettings {
  return {
    queueLimit: settings.LIVE_CLIENT_QUEUE_LIMIT,
    keepAliveMs: settings.LIVE_KEEP_ALIVE_MS,
    connectionInitTimeoutMs: settings.LIVE_CONNECTION_INIT_TIMEOUT_MS,
    upstreamRetryAttempts: settings.LIVE_UPSTREAM_RETRY_ATTEMPTS,
    ...overrides,
  };
}
