/**
 * HTTP status of a request the platform was too busy for: when every error of a response is
 * OVERLOADED (or SERVICE_UNAVAILABLE: a service restarting) and no root field has data (the whole request was refused, e.g. `placeOrder` while the
 * saga lags), the gateway answers 503 with `Retry-After`, so that HTTP clients, proxies and load
 * balancers see what GraphQL clients read in `extensions`. A response with any data stays 200.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ErrorCode } from '@swiftcart/platform';

/** The codes that say "nothing went wrong with the request: try again later". */
const RETRY_LATER = new Set<string>([ErrorCode.Overloaded, ErrorCode.ServiceUnavailable]);

/** The HTTP status of a wholly refused, overloaded request. */
export const OVERLOADED_STATUS = 503;

/** The `Retry-After` to send for these errors: the longest `retryAfterSeconds` among them (at least 1). */
function retryAfterOf(errors: readonly { readonly extensions?: Record<string, unknown> }[]): number {
  let seconds = 1;
  for (const error of errors) {
    const value = error.extensions?.retryAfterSeconds;
    if (typeof value === 'number' && Number.isFinite(value)) seconds = Math.max(seconds, Math.ceil(value));
  }
  return seconds;
}

/** The plugin: see the module comment. */
export function overloadedStatusPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (!errors?.length || !errors.every((e) => RETRY_LATER.has(e.extensions?.code as string))) return;
          if (data && Object.values(data).some((value) => value !== null)) return;
          response.http.status = OVERLOADED_STATUS;
          response.http.headers.set('retry-after', String(retryAfterOf(errors)));
        },
      };
    },
  };
}
