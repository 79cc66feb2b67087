import { runService } from '@swiftcart/platform';
import { productService } from './service.ts';

await runService(productService);
