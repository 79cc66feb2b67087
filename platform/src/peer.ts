/**
 * Calling another service's subgraph directly, as the gateway would: the cart service places orders
 * through the order service's `placeOrder`, and reads live stock from the inventory subgraph. The
 * call carries the gateway's credential (it comes from inside the platform) and, where a customer
 * acts, a short-lived token of theirs, so the peer applies its own rules to the same customer.
 */
import { GraphQLError } from 'graphql';
import { signToken, type Viewer } from './auth.ts';
import type { Config, ServiceName } from './config.ts';
import { ErrorCode, apiError } from './errors.ts';
import { gatewayCredentialHeaders } from './gateway-credential.ts';
import { ReplicaSet, notDelivered } from './replicas.ts';

/** How long a call to a peer may take by default before it fails as SERVICE_UNAVAILABLE. */
export const PEER_TIMEOUT_MS = 5_000;

/** How long the token minted for a customer's call to a peer lives: only for that call. */
const PEER_TOKEN_TTL_SECONDS = 60;

/** One GraphQL error of a peer's response. */
interface PeerError {
  readonly message: string;
  readonly extensions?: Record<string, unknown>;
}

/** Options of {@link PeerClient.request}. */
export interface PeerRequestOptions {
  /** The customer the call is made for: the peer sees a token with their id and roles. */
  readonly as?: Viewer;
  /** Overrides {@link PEER_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
}

/** A GraphQL client of one peer subgraph. */
export interface PeerClient {
  /** The peer's URLs (one per replica), called in turn; one that refuses the connection is tried last for a while. */
  readonly urls: readonly string[];
  /**
   * Runs `query` at the peer and returns its `data`. The peer's first GraphQL error is thrown as a
   * GraphQLError with the peer's message and extensions (its `code`, `field`, ...), so the caller's
   * client sees the peer's answer; a peer out of reach or too slow is SERVICE_UNAVAILABLE.
   */
  request<T>(query: string, variables?: Record<string, unknown>, options?: PeerRequestOptions): Promise<T>;
}

/**
 * The URLs of a peer's subgraph: its `<SERVICE>_URL` replicas when configured, else its port on
 * this host (a wildcard listening address is reached over loopback).
 */
export function peerUrls(config: Pick<Config, 'subgraphUrls' | 'servicePorts' | 'host'>, service: ServiceName): readonly string[] {
  const configured = config.subgraphUrls[service];
  if (configured?.length) return configured;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return [`http://${host.includes(':') ? `[${host}]` : host}:${config.servicePorts[service]}/graphql`];
}

/** A client of `service`'s subgraph under `config` (see {@link peerUrls}). */
export function peerClient(config: Config, service: ServiceName): PeerClient {
  const urls = peerUrls(config, service);
  const replicas = new ReplicaSet(urls);
  const credential = gatewayCredentialHeaders(config.subgraphSecret);
  return {
    urls,
    async request<T>(query: string, variables: Record<string, unknown> = {}, options: PeerRequestOptions = {}): Promise<T> {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...credential };
      const viewer = options.as;
      if (viewer?.customerId) {
        // Never outliving the caller's own token: an absolute expiry, in epoch seconds.
        const expiresAt = Math.floor(Math.min(Date.now() + PEER_TOKEN_TTL_SECONDS * 1000, viewer.expiresAt ?? Number.POSITIVE_INFINITY) / 1000);
        const token = await signToken(config.jwtSecret, { sub: viewer.customerId, roles: viewer.roles }, expiresAt);
        headers.authorization = `Bearer ${token}`;
      }
      const signal = AbortSignal.timeout(options.timeoutMs ?? PEER_TIMEOUT_MS);
      const send = async (url: string) => {
        const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal });
        return (await response.json()) as { data?: T | null; errors?: readonly PeerError[] };
      };
      let body: Awaited<ReturnType<typeof send>> | undefined;
      let failure: unknown;
      for (const index of replicas.order()) {
        try {
          body = await send(urls[index]);
          break;
        } catch (error) {
          failure = error;
          // Only a refused connection goes to the next replica: a request that may have arrived is never sent twice.
          if (!notDelivered(error)) break;
          replicas.refused(index);
        }
      }
      if (!body) {
        throw apiError(ErrorCode.ServiceUnavailable, `the ${service} service is briefly unavailable; try again`, {
          reason: (failure as Error).message,
        });
      }
      const first = body.errors?.[0];
      if (first) throw new GraphQLError(first.message, { extensions: { ...first.extensions } });
      if (!body.data) throw apiError(ErrorCode.ServiceUnavailable, `the ${service} service gave no answer; try again`);
      return body.data;
    },
  };
}
