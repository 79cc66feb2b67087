import { runService } from '@swiftcart/platform';
import { paymentService } from './service.ts';

await runService(paymentService);
