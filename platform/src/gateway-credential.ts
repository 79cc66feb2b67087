/**
 * How a subgraph knows that a request comes from the gateway (docs/security.md): the gateway sends
 * the shared secret `SUBGRAPH_SECRET` in {@link GATEWAY_CREDENTIAL_HEADER} on every HTTP request
 * and on every graphql-ws upgrade; a subgraph with a secret configured answers anything else with
 * 401 GATEWAY_CREDENTIAL_REQUIRED. A local process that can reach a subgraph's port therefore can
 * no longer skip the gateway's limits. Users' tokens are verified by the subgraph all the same:
 * the credential says who relayed the request, not who asked for it.
 *
 * A static header rather than an HMAC of each request: whoever can read the header on the wire can
 * read the users' tokens beside it, so between hosts that network needs TLS either way, and then an
 * HMAC adds nothing but hashing every body. The header costs one comparison per request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { ErrorCode } from './errors.ts';

/** The header that carries the gateway's credential, lower-case as Node presents it. */
export const GATEWAY_CREDENTIAL_HEADER = 'x-swiftcart-gateway-secret';

/** HTTP status of a request refused for want of the credential. */
export const GATEWAY_CREDENTIAL_STATUS = 401;

/**
 * The headers a trusted caller (the gateway, the benchmarks' gateways, tests) adds to every
 * subgraph request; none when no secret is configured.
 */
export function gatewayCredentialHeaders(secret: string | null | undefined): Record<string, string> {
  return secret ? { [GATEWAY_CREDENTIAL_HEADER]: secret } : {};
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/**
 * A check of incoming headers against `secrets`: the credential, or the credentials accepted while
 * one is rotated (`Config.acceptedSubgraphSecrets`). Digests of equal length are compared with
 * `timingSafeEqual`, each of them every time, so the time taken says nothing about the secrets'
 * content or length, nor which one matched. A repeated header (Node joins the values) never matches.
 */
export function gatewayCredentialCheck(secrets: string | readonly string[]): (headers: IncomingHttpHeaders) => boolean {
  const expected = (typeof secrets === 'string' ? [secrets] : secrets).map(digest);
  if (expected.length === 0) throw new TypeError('gatewayCredentialCheck needs at least one secret');
  return (headers) => {
    const sent = headers[GATEWAY_CREDENTIAL_HEADER];
    if (typeof sent !== 'string' || sent === '') return false;
    const given = digest(sent);
    let matched = false;
    for (const secret of expected) matched = timingSafeEqual(given, secret) || matched;
    return matched;
  };
}

/** The JSON body of a refused request: a GraphQL error response, as clients of a subgraph expect. */
export function gatewayCredentialRequiredBody(): { errors: { message: string; extensions: { code: string } }[] } {
  return {
    errors: [
      {
        message: `This subgraph serves the SwiftCart gateway only: the request lacks a valid ${GATEWAY_CREDENTIAL_HEADER} header`,
        extensions: { code: ErrorCode.GatewayCredentialRequired },
      },
    ],
  };
}
