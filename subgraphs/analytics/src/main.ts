import { startTracing } from '@swiftcart/platform/tracing';

// First: an instrumentation patches only what is imported after it starts.
startTracing('analytics');
const [{ runService }, { analyticsService }] = await Promise.all([import('@swiftcart/platform'), import('./service.ts')]);
await runService(analyticsService);
