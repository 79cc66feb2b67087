/**
 * Dead letters (DESIGN.md §7): lists and replays the messages consumers sent to `<topic>.dlq`.
 *
 *   npm run dlq -- list <topic> [--json]
 *   npm run dlq -- replay <topic> [--offset N] [--partition P]
 *
 * `<topic>` is the original topic without the configured prefix, e.g. `order.events.v1` (a name
 * ending in `.dlq` is accepted too). `replay` republishes dead letters with their original key,
 * value and headers to the topic they failed on (`dlq-original-topic`), and records what it
 * replayed in the consumer group `dlq-replay.<topic>`: its committed offset on the DLQ, plus
 * offsets replayed one by one above it in the commit's metadata. A second replay republishes
 * nothing; and the consumers' inboxes make a replayed event that was applied after all harmless.
 */
// The modules themselves, not the package index: a CLI starts faster without Apollo and MikroORM.
import { type Config, isMain, loadConfig } from '@swiftcart/platform/config';
import { createLogger } from '@swiftcart/platform/logger';
import { type IncomingMessage, type KafkaClient, type OutgoingMessage, createKafka } from '@swiftcart/platform/kafka';
import {
  DLQ_ATTEMPTS_HEADER,
  DLQ_CONSUMER_HEADER,
  DLQ_ERROR_HEADER,
  DLQ_FAILED_AT_HEADER,
  DLQ_HEADERS,
  DLQ_ORIGINAL_TOPIC_HEADER,
  EVENT_TYPE_HEADER,
  dlqTopic,
} from '@swiftcart/platform/events';

const USAGE = `usage: npm run dlq -- <command> <topic> [options]

commands:
  list <topic> [--json]                        print the dead letters of <topic>.dlq
  replay <topic> [--offset N] [--partition P]  republish dead letters (all not yet replayed, or
                                               the one at offset N) to the topic they failed on

<topic> is the original topic without the prefix, e.g. order.events.v1.
environment: KAFKA_BROKERS, KAFKA_TOPIC_PREFIX (see platform/src/config.ts)`;

/** Where the command writes; tests capture it. */
export interface DlqIo {
  readonly config?: Config;
  readonly out?: (line: string) => void;
  readonly err?: (line: string) => void;
}

/** One dead letter as `list` shows it. */
export interface DeadLetter {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly type: string | null;
  readonly error: string | null;
  readonly attempts: number | null;
  readonly failedAt: string | null;
  readonly consumer: string | null;
  readonly originalTopic: string | null;
  readonly replayed: boolean;
}

class UsageError extends Error {}

/** What `dlq-replay.<topic>` has recorded for one DLQ partition. */
interface ReplayState {
  /** Every offset below this was replayed (or skipped by a replay of all). */
  next: bigint;
  /** Offsets at or above `next` replayed one by one. */
  replayed: Set<bigint>;
}

function replayGroup(topic: string): string {
  return `dlq-replay.${topic}`;
}

async function readReplayState(kafka: KafkaClient, topic: string): Promise<Map<number, ReplayState>> {
  const states = new Map<number, ReplayState>();
  for (const committed of await kafka.groupOffsets(replayGroup(topic), dlqTopic(topic))) {
    let replayed: bigint[] = [];
    try {
      const metadata = committed.metadata ? (JSON.parse(committed.metadata) as { replayed?: string[] }) : {};
      replayed = (metadata.replayed ?? []).map((o) => BigInt(o));
    } catch {
      // Metadata written by something else: only the offset counts.
    }
    states.set(committed.partition, { next: committed.offset === null ? 0n : BigInt(committed.offset), replayed: new Set(replayed) });
  }
  return states;
}

function isReplayed(state: ReplayState | undefined, offset: string): boolean {
  if (!state) return false;
  const o = BigInt(offset);
  return o < state.next || state.replayed.has(o);
}

function toDeadLetter(message: IncomingMessage, state: ReplayState | undefined): DeadLetter {
  const attempts = message.headers[DLQ_ATTEMPTS_HEADER];
  return {
    partition: message.partition,
    offset: message.offset,
    key: message.key,
    type: message.headers[EVENT_TYPE_HEADER] ?? null,
    error: message.headers[DLQ_ERROR_HEADER] ?? null,
    attempts: attempts === undefined ? null : Number(attempts),
    failedAt: message.headers[DLQ_FAILED_AT_HEADER] ?? null,
    consumer: message.headers[DLQ_CONSUMER_HEADER] ?? null,
    originalTopic: message.headers[DLQ_ORIGINAL_TOPIC_HEADER] ?? null,
    replayed: isReplayed(state, message.offset),
  };
}

/** The original topic (without prefix) a dead letter is republished to. */
function replayTarget(config: Config, message: IncomingMessage, fallback: string): string {
  const original = message.headers[DLQ_ORIGINAL_TOPIC_HEADER];
  if (!original) return fallback;
  if (config.kafkaTopicPrefix && original.startsWith(config.kafkaTopicPrefix)) return original.slice(config.kafkaTopicPrefix.length);
  if (config.kafkaTopicPrefix)
    throw new Error(`dead letter at offset ${message.offset} failed on ${original}, outside the prefix "${config.kafkaTopicPrefix}"`);
  return original;
}

function asOriginal(message: IncomingMessage): OutgoingMessage {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers)) if (!DLQ_HEADERS.includes(name)) headers[name] = value;
  return { key: message.key, value: message.value, headers };
}

/** Republishes `messages` in order, one batch per run of messages with the same target topic. */
async function republish(kafka: KafkaClient, config: Config, topic: string, messages: readonly IncomingMessage[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let batch: OutgoingMessage[] = [];
  let target: string | null = null;
  const flush = async () => {
    if (target === null || batch.length === 0) return;
    await kafka.publish(target, batch);
    counts.set(target, (counts.get(target) ?? 0) + batch.length);
    batch = [];
  };
  for (const message of messages) {
    const next = replayTarget(config, message, topic);
    if (next !== target || batch.length >= 500) {
      await flush();
      target = next;
    }
    batch.push(asOriginal(message));
  }
  await flush();
  return counts;
}

async function ensureDlqExists(kafka: KafkaClient, topic: string) {
  if (!(await kafka.hasTopic(dlqTopic(topic)))) {
    throw new Error(`${kafka.topic(dlqTopic(topic))} does not exist (no consumer of ${kafka.topic(topic)} has started, or KAFKA_TOPIC_PREFIX differs)`);
  }
  return kafka.topicOffsets(dlqTopic(topic));
}

/** The dead letters of `<topic>.dlq`, oldest first, each marked replayed or not. */
export async function listDeadLetters(kafka: KafkaClient, topic: string): Promise<DeadLetter[]> {
  await ensureDlqExists(kafka, topic);
  const states = await readReplayState(kafka, topic);
  const messages = await kafka.readTopic(dlqTopic(topic));
  return messages.map((m) => toDeadLetter(m, states.get(m.partition)));
}

/** Result of a replay. */
export interface ReplayResult {
  /** Messages republished, per target topic (without prefix). */
  readonly replayed: ReadonlyMap<string, number>;
  /** Dead letters left out because an earlier replay republished them. */
  readonly skipped: number;
}

/** Republishes the dead letters not replayed yet (or the one at `offset`) and records them. */
export async function replayDeadLetters(
  kafka: KafkaClient,
  config: Config,
  topic: string,
  options: { offset?: string; partition?: number } = {},
): Promise<ReplayResult> {
  const partitions = await ensureDlqExists(kafka, topic);
  const states = await readReplayState(kafka, topic);
  const dlq = dlqTopic(topic);
  if (options.offset !== undefined) {
    const partition = options.partition ?? 0;
    const bounds = partitions.find((p) => p.partition === partition);
    const offset = BigInt(options.offset);
    if (!bounds || offset < BigInt(bounds.low) || offset >= BigInt(bounds.high)) {
      throw new Error(`${kafka.topic(dlq)} has no message at partition ${partition} offset ${options.offset}`);
    }
    const state = states.get(partition) ?? { next: 0n, replayed: new Set<bigint>() };
    if (isReplayed(state, options.offset)) return { replayed: new Map(), skipped: 1 };
    const [message] = await kafka.readTopic(dlq, {
      partitions: [partition],
      from: { [partition]: options.offset },
      until: { [partition]: (offset + 1n).toString() },
    });
    if (!message) throw new Error(`${kafka.topic(dlq)} partition ${partition} offset ${options.offset} could not be read`);
    const replayed = await republish(kafka, config, topic, [message]);
    state.replayed.add(offset);
    while (state.replayed.has(state.next)) state.replayed.delete(state.next++);
    await kafka.commitGroupOffsets(replayGroup(topic), dlq, [
      { partition, offset: state.next.toString(), metadata: JSON.stringify({ replayed: [...state.replayed].map(String) }) },
    ]);
    return { replayed, skipped: 0 };
  }
  const from: Record<number, string> = {};
  const until: Record<number, string> = {};
  const pending = partitions.filter((p) => {
    const state = states.get(p.partition);
    const start = state && state.next > BigInt(p.low) ? state.next : BigInt(p.low);
    from[p.partition] = start.toString();
    until[p.partition] = p.high;
    return start < BigInt(p.high);
  });
  if (pending.length === 0) return { replayed: new Map(), skipped: 0 };
  const messages = await kafka.readTopic(dlq, { partitions: pending.map((p) => p.partition), from, until });
  const toReplay = messages.filter((m) => !isReplayed(states.get(m.partition), m.offset));
  const replayed = await republish(kafka, config, topic, toReplay);
  await kafka.commitGroupOffsets(
    replayGroup(topic),
    dlq,
    pending.map((p) => ({ partition: p.partition, offset: p.high, metadata: null })),
  );
  return { replayed, skipped: messages.length - toReplay.length };
}

function parseArgs(argv: readonly string[]) {
  const [command, ...rest] = argv;
  if (command !== 'list' && command !== 'replay') throw new UsageError(command ? `unknown command: ${command}` : 'no command given');
  let topic: string | undefined;
  let json = false;
  let offset: string | undefined;
  let partition: number | undefined;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--json' && command === 'list') json = true;
    else if (arg === '--offset' && command === 'replay') {
      offset = rest[++i];
      if (offset === undefined || !/^\d+$/.test(offset)) throw new UsageError('--offset needs a whole number');
    } else if (arg === '--partition' && command === 'replay') {
      const value = rest[++i];
      if (value === undefined || !/^\d+$/.test(value)) throw new UsageError('--partition needs a whole number');
      partition = Number(value);
    } else if (!arg.startsWith('--') && topic === undefined) topic = arg;
    else throw new UsageError(`unexpected argument: ${arg}`);
  }
  if (!topic) throw new UsageError('missing <topic>');
  if (partition !== undefined && offset === undefined) throw new UsageError('--partition goes with --offset');
  return { command, topic: topic.endsWith('.dlq') ? topic.slice(0, -'.dlq'.length) : topic, json, offset, partition };
}

function table(rows: readonly DeadLetter[]): string[] {
  const header = ['PARTITION', 'OFFSET', 'KEY', 'TYPE', 'ATTEMPTS', 'FAILED AT', 'CONSUMER', 'REPLAYED', 'ERROR'];
  const cells = rows.map((r) => [
    String(r.partition),
    r.offset,
    r.key ?? '-',
    r.type ?? '-',
    r.attempts === null ? '-' : String(r.attempts),
    r.failedAt ?? '-',
    r.consumer ?? '-',
    r.replayed ? 'yes' : 'no',
    (r.error ?? '-').replaceAll('\n', ' '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]))).join('  ');
  return [line(header), ...cells.map(line)];
}

/** Runs one command line; resolves with the exit code (2 for a usage error). */
export async function main(argv: readonly string[], io: DlqIo = {}): Promise<number> {
  const out = io.out ?? ((line: string) => console.log(line));
  const err = io.err ?? ((line: string) => console.error(line));
  if (argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    out(USAGE);
    return 0;
  }
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`${error.message}\n`);
    err(USAGE);
    return 2;
  }
  const config = io.config ?? loadConfig();
  // Failures are reported below, once; kafkajs's own retry chatter only with LOG_LEVEL set.
  const kafka = createKafka(config, createLogger('dlq', process.env.LOG_LEVEL ?? 'fatal'), 'swiftcart-dlq');
  try {
    if (args.command === 'list') {
      const letters = await listDeadLetters(kafka, args.topic);
      if (args.json) for (const letter of letters) out(JSON.stringify(letter));
      else if (letters.length === 0) out(`${kafka.topic(dlqTopic(args.topic))} holds no dead letters`);
      else for (const line of table(letters)) out(line);
      return 0;
    }
    const result = await replayDeadLetters(kafka, config, args.topic, { offset: args.offset, partition: args.partition });
    const total = [...result.replayed.values()].reduce((a, b) => a + b, 0);
    const where = [...result.replayed].map(([t, n]) => `${n} to ${kafka.topic(t)}`).join(', ');
    out(`replayed ${total} dead letter${total === 1 ? '' : 's'}${where ? ` (${where})` : ''}${result.skipped ? `; ${result.skipped} already replayed` : ''}`);
    return 0;
  } catch (error) {
    err(`[dlq] ${args.command} failed: ${(error as Error).message}`);
    return 1;
  } finally {
    await kafka.close();
  }
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
