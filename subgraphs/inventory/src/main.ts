import { runService } from '@swiftcart/platform';
import { inventoryService } from './service.ts';

await runService(inventoryService);
