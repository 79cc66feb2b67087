import { runService } from '@swiftcart/platform';
import { shipmentService } from './service.ts';

await runService(shipmentService);
