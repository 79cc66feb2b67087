import type { RequestContext } from '@swiftcart/platform';

/**
 * The analytics subgraph's request context: the base context. Every field reads its figures in
 * one or two statements (no per-item loads to batch), so it needs no DataLoader.
 */
export type AnalyticsContext = RequestContext;
