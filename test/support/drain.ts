/**
 * The drain barrier: resolves once the messaging of a system under test has nothing left to do, so
 * that "nothing else happens" is checked by draining and then asserting, never by sleeping.
 *
 * Drained means, all in one check:
 * - every outbox given has no row waiting for its relay (`outboxWaiting`: events not on Kafka yet,
 *   live changes not projected yet);
 * - every running consumer group under the system's topic prefix (its services' consumers and the
 *   test's own taps and probes) is Stable and has committed, on every partition of every topic it
 *   subscribes to, the topic's high watermark: each message there has been handled, the handler's
 *   transaction and its after-commit effects included (the platform's consumers commit an offset
 *   only after that);
 * - no topic a group reads grew while the check ran (what a handler or relay did meanwhile).
 *
 * A group whose members are all gone (Empty: a stopped tap, a killed service) is not waited for: it
 * cannot move. The outbox relays and consumers are timeless: work that only a timer starts (the order
 * service's deadline sweeper) is not in flight until it has written its outbox row.
 */
import { type Admin, AssignerProtocol, Kafka, logLevel } from 'kafkajs';
import { type Config, type EntityManager, SERVICE_NAMES, type ServiceName, outboxWaiting } from '@swiftcart/platform';
import type { TestStack } from './stack.ts';
import { waitFor } from './wait.ts';

/** What {@link drain} waits on. */
export interface DrainScope {
  /** The brokers and the topic prefix: every consumer group under the prefix counts. */
  readonly config: Pick<Config, 'kafkaBrokers' | 'kafkaTopicPrefix'>;
  /** The outboxes that must be empty, by name: a fresh EntityManager on each service database. */
  readonly outboxes: Readonly<Record<string, () => EntityManager>>;
}

/** How {@link drain} waits. */
export interface DrainOptions {
  /** Fails after this long, naming what was still busy (default 30 s). */
  readonly timeoutMs?: number;
  /** Pause between two checks (default 50 ms). */
  readonly intervalMs?: number;
  /** Told what each check found still busy (empty once drained): for the barrier's own test. */
  readonly onCheck?: (busy: readonly string[]) => void;
}

/** The readers `KafkaClient.readTopic` makes for a moment and deletes again: they commit nothing. */
const THROWAWAY_GROUP = 'swiftcart-reader.';

/** Something with a database per service: an in-process stack, or a saga system (process stacks). */
interface WithDatabases {
  readonly config: Config;
  em(service: ServiceName): EntityManager;
}

/** The drain scope of an in-process stack: its services' outboxes and the groups under its prefix. */
export function drainScopeOf(stack: TestStack): DrainScope {
  const outboxes: Record<string, () => EntityManager> = {};
  for (const [name, service] of Object.entries(stack.services)) outboxes[name] = () => service.runtime.db.fork();
  return { config: stack.config, outboxes };
}

/** The drain scope of a saga system (in-process or child processes): the outboxes of `services`. */
export function drainScopeOfSystem(system: WithDatabases, services: readonly ServiceName[] = SERVICE_NAMES): DrainScope {
  return { config: system.config, outboxes: Object.fromEntries(services.map((name) => [name, () => system.em(name)])) };
}

/** Waits until the scope is drained (see the module comment); rejects after the timeout naming what was still busy. */
export async function drain(scope: DrainScope | TestStack, options: DrainOptions = {}): Promise<void> {
  const resolved = 'services' in scope ? drainScopeOf(scope) : scope;
  const admin = await connectAdmin(resolved.config);
  try {
    let busy: readonly string[] = [];
    await waitFor(
      async () => {
        busy = await busyParts(admin, resolved);
        options.onCheck?.(busy);
        return busy.length === 0;
      },
      "the outboxes to be empty and every consumer group at its topics' high watermarks",
      options.timeoutMs ?? 30_000,
      () => busy,
      options.intervalMs ?? 50,
    );
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** One check: what is still busy (empty when drained). Exported for the barrier's own test. */
export async function busyParts(admin: Admin, scope: DrainScope): Promise<string[]> {
  const prefix = scope.config.kafkaTopicPrefix;
  const busy: string[] = [];
  const ends = new Map<string, Promise<{ partition: number; high: string; low: string }[]>>();
  const endsOf = (topic: string) => {
    let found = ends.get(topic);
    if (!found) ends.set(topic, (found = admin.fetchTopicOffsets(topic)));
    return found;
  };

  const { groups } = await admin.listGroups();
  const ours = groups.map((g) => g.groupId).filter((id) => id.startsWith(prefix) && !id.startsWith(prefix + THROWAWAY_GROUP));
  const described = ours.length > 0 ? (await admin.describeGroups(ours)).groups : [];
  for (const group of described) {
    const name = group.groupId.slice(prefix.length);
    if (group.state === 'Empty' || group.state === 'Dead') continue;
    if (group.state !== 'Stable') {
      busy.push(`group ${name} is ${group.state}`);
      continue;
    }
    const topics = new Set<string>();
    for (const member of group.members) {
      for (const topic of AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.topics ?? []) topics.add(topic);
    }
    if (topics.size === 0) continue;
    const committed = await admin.fetchOffsets({ groupId: group.groupId, topics: [...topics] });
    for (const { topic, partitions } of committed) {
      const at = new Map(partitions.map((p) => [p.partition, p.offset]));
      for (const end of await endsOf(topic)) {
        const offset = at.get(end.partition);
        // Nothing committed yet: everything from the low watermark on is still to be handled.
        const from = offset !== undefined && Number(offset) >= 0 ? BigInt(offset) : BigInt(end.low);
        const lag = BigInt(end.high) - from;
        if (lag > 0n) busy.push(`group ${name} is ${lag} behind on ${topic.slice(prefix.length)}[${end.partition}]`);
      }
    }
  }

  for (const [name, em] of Object.entries(scope.outboxes)) {
    const rows = await waitingRows(em());
    if (rows > 0) busy.push(`${name}'s outbox has ${rows} rows waiting for its relay`);
  }

  // A relay or handler that wrote to a topic after its readers were checked: check again.
  for (const [topic, before] of ends) {
    const was = new Map((await before).map((o) => [o.partition, o.high]));
    for (const now of await admin.fetchTopicOffsets(topic)) {
      if (was.get(now.partition) !== now.high) busy.push(`${topic.slice(prefix.length)}[${now.partition}] grew during the check`);
    }
  }
  return busy;
}

/** Rows waiting in one outbox; a database without an outbox table has none. */
async function waitingRows(em: EntityManager): Promise<number> {
  try {
    return (await outboxWaiting(em)).rows;
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') return 0; // undefined_table
    throw error;
  }
}

/** A connected Kafka admin on the scope's brokers (the caller disconnects it). */
export async function connectAdmin(config: Pick<Config, 'kafkaBrokers'>): Promise<Admin> {
  const kafka = new Kafka({ clientId: 'swiftcart-test-drain', brokers: [...config.kafkaBrokers], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
  const admin = kafka.admin();
  await admin.connect();
  return admin;
}
