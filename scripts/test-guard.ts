/**
 * Loaded (`--import`) by scripts/test.ts into every test process, before the test file: a file
 * listed in scripts/test-files.ts as needing no infrastructure runs with Kafka, PostgreSQL and Redis
 * addresses where nothing listens, so a listed file that starts to need them fails instead of
 * quietly using whatever runs on this machine.
 */
import { guardedEnvironment } from './test-files.ts';

// Node's test runner marks the processes it runs a file in; the file is their first argument.
if (process.env.NODE_TEST_CONTEXT && process.argv[1]) {
  Object.assign(process.env, guardedEnvironment(process.argv[1], process.env));
}
