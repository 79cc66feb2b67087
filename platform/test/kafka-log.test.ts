/**
 * kafkajs's log lines through platform/src/kafka-log.ts: a starting broker's normal states go to
 * debug and once to info in words; anything else keeps its level. The end-to-end check, a fresh
 * broker and `npm start` with no ERROR line, is test/e2e/start-quiet.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { logLevel } from 'kafkajs';
import { createLogger } from '../src/logger.ts';
import { KAFKA_TRANSIENT_STATES, TRANSIENT_ATTEMPTS, kafkaLogCreator, logKafkaRetry, transientKafkaState } from '../src/kafka-log.ts';

const { errorCodes } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as { errorCodes: { type: string; message: string }[] };

/** A logger at debug whose lines are kept as { level (its label), msg }. */
function capture(): { lines: { level: string; msg: string }[]; log: ReturnType<typeof createLogger> } {
  const lines: { level: string; msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n')) if (text.trim()) lines.push(JSON.parse(text));
      done();
    },
  });
  return { lines, log: createLogger('kafka-log-test', 'debug', sink) };
}

describe('kafkajs log lines', () => {
  it('every transient state is still an error type of the installed kafkajs', () => {
    const types = new Set(errorCodes.map((code) => code.type));
    assert.deepEqual(
      Object.keys(KAFKA_TRANSIENT_STATES).filter((type) => !types.has(type)),
      [],
    );
  });

  it('a starting broker’s answers go to debug, and once per kind to info in words; real failures stay errors', async () => {
    const { lines, log } = capture();
    const write = kafkaLogCreator(log)();
    const loading = errorCodes.find((code) => code.type === 'GROUP_LOAD_IN_PROGRESS')!.message;
    const entry = (message: string, extra: Record<string, unknown> = {}) => ({
      namespace: 'Connection',
      level: logLevel.ERROR,
      label: 'ERROR',
      log: { timestamp: new Date().toISOString(), logger: 'kafkajs', message, ...extra },
    });
    write(entry('Response FindCoordinator(key: 10, version: 2)', { error: loading, correlationId: 3 }));
    write(entry('Response FindCoordinator(key: 10, version: 2)', { error: loading, correlationId: 4 }));
    write(entry(`Crash: KafkaJSProtocolError: ${loading}`, { groupId: 'g', stack: 'at ...' }));
    write(entry('Response CreateTopics(key: 19, version: 3)', { error: 'Topic creation errors' }));
    write(entry('Restarting the consumer in 300ms', { groupId: 'g' }));
    write(entry('Crash: KafkaJSNonRetriableError: The broker rejected the SASL handshake', { groupId: 'g' }));
    write({ ...entry('Could not create topics', { error: 'Request timed out' }), level: logLevel.WARN });
    await new Promise((resolve) => setImmediate(resolve));

    const at = (level: string) => lines.filter((line) => line.level === level).map((line) => line.msg);
    assert.deepEqual(at('error'), ['Crash: KafkaJSNonRetriableError: The broker rejected the SASL handshake']);
    assert.deepEqual(at('warn'), ['Could not create topics']);
    assert.deepEqual(at('info'), [
      "waiting for Kafka's group coordinator to load the consumer group (a normal state for a while; kafkajs retries)",
      'topics are being created by more than one process (a normal state for a while; kafkajs retries)',
      'a consumer is restarting after a retriable error (a normal state for a while; kafkajs retries)',
    ]);
    assert.equal(at('debug').length, 5, 'every transient line is still there at debug');
  });

  it('a retry for a starting broker’s state is said at info in words for four attempts, then warned; any other cause is warned at once', async () => {
    const { lines, log } = capture();
    const noLeader = new Error(errorCodes.find((code) => code.type === 'UNKNOWN_TOPIC_OR_PARTITION')!.message);
    logKafkaRetry(log, noLeader, 1, 'consumer did not start; trying again', { groupId: 'g' });
    logKafkaRetry(log, noLeader, TRANSIENT_ATTEMPTS, 'consumer did not start; trying again', { groupId: 'g' });
    logKafkaRetry(log, new Error('password authentication failed'), 1, 'outbox relay failed; retrying');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(
      lines.map((line) => [line.level, line.msg]),
      [
        ['info', `consumer did not start; trying again: ${KAFKA_TRANSIENT_STATES.UNKNOWN_TOPIC_OR_PARTITION}`],
        ['warn', 'consumer did not start; trying again'],
        ['warn', 'outbox relay failed; retrying'],
      ],
    );
  });

  it('names the state from the error or the message', () => {
    const leader = errorCodes.find((code) => code.type === 'LEADER_NOT_AVAILABLE')!.message;
    assert.equal(transientKafkaState('Response Metadata(key: 3, version: 6)', leader), KAFKA_TRANSIENT_STATES.LEADER_NOT_AVAILABLE);
    assert.equal(transientKafkaState('Connection error: connect ECONNREFUSED 127.0.0.1:9092', undefined), undefined);
  });
});
