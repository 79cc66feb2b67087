/**
 * @swiftcart/platform: what every SwiftCart service shares. A service imports from here and keeps
 * only its own domain (entities, resolvers, event handlers, migrations).
 */
export * from './config.ts';
export * from './settings.ts';
export * from './logger.ts';
export * from './errors.ts';
export * from './auth.ts';
export * from './gateway-credential.ts';
export * from './database.ts';
export * from './redis.ts';
export * from './cache.ts';
export * from './kafka.ts';
export * from './health.ts';
export * from './http.ts';
export * from './service.ts';
export * from './pagination.ts';
export * from './ids.ts';
export * from './address.ts';
export * from './resilience.ts';
export * from './events.ts';
export * from './event-schemas.ts';
export * from './outbox.ts';
export * from './faults.ts';
export * from './retention.ts';
export * from './inbox.ts';
export * from './live.ts';
export * from './ws.ts';
export * from './expiry.ts';
export * from './limits.ts';
export * from './input.ts';
export * from './reasons.ts';
export * from './metrics.ts';
export * from './messaging-tracing.ts';
export * from './catalogue.ts';
export * from './peer.ts';
export * from './replicas.ts';
