/**
 * @swiftcart/sdk: SwiftCart's typed client for browsers, Node and React Native.
 *
 * `createClient({ url, token })` gives one typed method per storefront operation of
 * `schema/operations/*.graphql`; subscriptions are async iterators over graphql-ws; every failure
 * is a {@link SwiftCartError} whose `code` is the API's `extensions.code`.
 */
export {
  type BusyNotice,
  type ClientOptions,
  type MethodArgs,
  type RequestMethods,
  type ResultOfMethod,
  type SubscriptionMethods,
  type SwiftCartClient,
  busyDelayMs,
  createClient,
} from './client.ts';
export {
  type ApiErrorCode,
  type ClientErrorCodeValue,
  type GraphQLErrorPayload,
  type SwiftCartErrorCode,
  type SwiftCartErrorInit,
  ClientErrorCode,
  ErrorCode,
  SwiftCartError,
  isSwiftCartError,
} from './errors.ts';
export type { FetchInit, FetchLike, FetchResponse, RequestOptions } from './http.ts';
export type { LiveSubscription } from './live.ts';
export {
  type RequestName,
  type ResultOf,
  type SubscriptionName,
  type VariablesOf,
  requestDocuments,
  subscriptionDocuments,
} from './operations.ts';
export type { NoToken, TokenSource } from './token.ts';
export { webSocketUrlOf } from './wire.ts';
/** The generated documents (TypedDocumentNode, usable with Apollo Client, urql, ...) and their types. */
export * from './generated/operations.ts';
