/**
 * kafkajs's log lines, sorted into what needs a person and what does not. kafkajs logs at ERROR
 * every error answer it gets, also the states a broker is normally in for a while after it starts
 * (its group coordinator loading, partitions without a leader yet, a group rebalancing), which it
 * then retries through. A newcomer's first `npm start` read twenty of them as a failure. Those
 * states go to debug, and the first of each kind in a process once to info, in words; anything else
 * keeps kafkajs's level.
 */
import { createRequire } from 'node:module';
import { type LogEntry, logLevel } from 'kafkajs';
import type { Logger } from './logger.ts';

/**
 * kafkajs's protocol error codes, each with its type and the message it logs. Not exported by the
 * package's entry point; kafkajs is pinned (package-lock), and a test checks that every type below
 * is still found here.
 */
const { errorCodes } = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
  errorCodes: readonly { type: string; message: string }[];
};

/**
 * The broker's answers that mean "not yet" while it starts, a topic is new or a group settles,
 * by kafkajs error type, with what the log says instead (once per process).
 */
export const KAFKA_TRANSIENT_STATES: Readonly<Record<string, string>> = {
  GROUP_LOAD_IN_PROGRESS: "waiting for Kafka's group coordinator to load the consumer group",
  GROUP_COORDINATOR_NOT_AVAILABLE: "waiting for Kafka's group coordinator",
  NOT_COORDINATOR_FOR_GROUP: "waiting for Kafka's group coordinator to settle",
  LEADER_NOT_AVAILABLE: 'waiting for Kafka to elect the partition leaders of a new topic',
  NOT_LEADER_FOR_PARTITION: 'waiting for Kafka to elect the partition leaders of a new topic',
  UNKNOWN_TOPIC_OR_PARTITION: 'waiting for a new topic to reach every broker',
  REBALANCE_IN_PROGRESS: 'waiting for a consumer group to rebalance',
  UNKNOWN_MEMBER_ID: 'a consumer is rejoining its group',
};

/**
 * kafkajs's own lines that follow from one of those states: the CreateTopics answer when another
 * process created the topic first (the admin client takes "already exists" as done; any other
 * failure reaches our caller, which reports it), and a consumer restarting after a retriable crash
 * (a crash that is not retriable still logs at ERROR).
 */
const FOLLOW_UPS: readonly [RegExp, string][] = [
  [/^Topic creation errors$/, 'topics are being created by more than one process'],
  [/^Restarting the consumer in \d+ms$/, 'a consumer is restarting after a retriable error'],
];

/** The states already announced at info in this process: every Kafka client shares them. */
const said = new Set<string>();

const WORDS_BY_MESSAGE = new Map<string, string>();
for (const { type, message } of errorCodes) {
  const words = KAFKA_TRANSIENT_STATES[type];
  if (words) WORDS_BY_MESSAGE.set(message, words);
}

/** The words for a log entry of a transient state, or undefined when it may need a person. */
export function transientKafkaState(message: string, error: unknown): string | undefined {
  for (const text of [typeof error === 'string' ? error : undefined, message]) {
    if (!text) continue;
    for (const [known, words] of WORDS_BY_MESSAGE) if (text.includes(known)) return words;
    for (const [pattern, words] of FOLLOW_UPS) if (pattern.test(text)) return words;
  }
  return undefined;
}

/** Failed attempts after which a transient state is worth a warning after all (about half a minute of retries). */
export const TRANSIENT_ATTEMPTS = 5;

/**
 * Logs a failed attempt at something Kafka-bound that will be tried again: at info, in words, while
 * the cause is one of a starting broker's states and fewer than {@link TRANSIENT_ATTEMPTS} attempts
 * have failed; at warn otherwise.
 */
export function logKafkaRetry(log: Logger, error: unknown, attempt: number, msg: string, fields: Record<string, unknown> = {}): void {
  const message = error instanceof Error ? error.message : String(error);
  const state = attempt < TRANSIENT_ATTEMPTS ? transientKafkaState(message, undefined) : undefined;
  if (state) log.info({ ...fields, err: message, attempt }, `${msg}: ${state}`);
  else log.warn({ ...fields, err: error, attempt }, msg);
}

/** kafkajs's `logCreator` for `log`: transient states at debug, once at info; the rest at kafkajs's level. */
export function kafkaLogCreator(log: Logger) {
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...rest } = entry;
      const line = { kafka: rest, msg: message };
      if (level <= logLevel.WARN) {
        const words = transientKafkaState(message, rest.error);
        if (words !== undefined) {
          log.debug(line);
          if (!said.has(words)) {
            said.add(words);
            log.info({ kafka: { message, error: rest.error } }, `${words} (a normal state for a while; kafkajs retries)`);
          }
          return;
        }
      }
      if (level === logLevel.ERROR) log.error(line);
      else if (level === logLevel.WARN) log.warn(line);
      else log.debug(line);
    };
}
