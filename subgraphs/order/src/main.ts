import { runService } from '@swiftcart/platform';
import { orderService } from './service.ts';

await runService(orderService);
