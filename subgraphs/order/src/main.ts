import { startTracing } from '@swiftcart/platform/tracing';

// First: an instrumentation patches only what is imported after it starts.
startTracing('order');
const [{ runService }, { orderService }] = await Promise.all([import('@swiftcart/platform'), import('./service.ts')]);
await runService(orderService);
