import { startTracing } from '@swiftcart/platform/tracing';

// First: an instrumentation patches only what is imported after it starts.
startTracing('product');
const [{ runService }, { productService }] = await Promise.all([import('@swiftcart/platform'), import('./service.ts')]);
await runService(productService);
