/**
 * A local single-node Apache Kafka broker (KRaft, combined broker + controller) for machines
 * without Docker: the jars come from Maven Central through `scripts/kafka/pom.xml`, the data,
 * logs, pid and cached classpath live under `.data/kafka/`.
 *
 * Whether a broker answers is asked through the platform's Kafka client (`probeKafka` in
 * `platform/src/kafka.ts`, the one module that knows kafkajs): ApiVersions, then Metadata.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, REPO_ROOT } from '../../platform/src/config.ts';
import { probeKafka } from '../../platform/src/kafka.ts';

/** Directory that holds everything of the locally managed broker. */
export const KAFKA_HOME = path.join(REPO_ROOT, '.data', 'kafka');
const CLASSPATH_FILE = path.join(KAFKA_HOME, 'classpath.txt');

/**
 * The files of one locally managed broker, all under its home directory: `.data/kafka` for the
 * project's broker, another directory for a scratch broker a test may kill (the jar classpath is
 * shared).
 */
interface BrokerFiles {
  readonly home: string;
  readonly data: string;
  readonly logs: string;
  readonly pid: string;
  readonly lock: string;
  readonly stdout: string;
  readonly clusterId: string;
  readonly serverProperties: string;
  readonly serverLog: string;
}

function brokerFiles(home: string = KAFKA_HOME): BrokerFiles {
  const logs = path.join(home, 'logs');
  return {
    home,
    data: path.join(home, 'data'),
    logs,
    pid: path.join(home, 'kafka.pid'),
    lock: path.join(home, 'start.lock'),
    stdout: path.join(home, 'stdout.log'),
    clusterId: path.join(home, 'cluster.id'),
    serverProperties: path.join(home, 'server.properties'),
    serverLog: path.join(logs, 'server.log'),
  };
}
const POM = path.join(REPO_ROOT, 'scripts', 'kafka', 'pom.xml');
const LOG4J_CONFIG = path.join(REPO_ROOT, 'scripts', 'kafka', 'log4j2.properties');

const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;

/** Receives one line of progress; scripts pass something that prints it. */
export type Log = (message: string) => void;

/** Result of {@link ensureKafka}. */
export interface EnsureKafkaResult {
  /** True when this call started the broker, false when one already answered. */
  readonly started: boolean;
  /** The broker address that was checked, `host:port`. */
  readonly broker: string;
  /** Pid of the broker process when this call started it. */
  readonly pid?: number;
}

/** Result of {@link stopKafka}. */
export interface StopKafkaResult {
  /** True when a running broker process was signalled and is gone now. */
  readonly stopped: boolean;
  readonly pid?: number;
  /** True when it ignored SIGTERM for 30 s and had to be killed. */
  readonly killed?: boolean;
}

/** What {@link kafkaStatus} reports about the configured broker and the locally managed one. */
export interface KafkaStatus {
  readonly broker: string;
  /** The broker answered an ApiVersions and a Metadata request. */
  readonly answers: boolean;
  /** Pid of the broker this repository manages, when its process is alive. */
  readonly pid?: number;
  /** The local data dir has been formatted (holds `meta.properties`). */
  readonly formatted: boolean;
  readonly clusterId?: string;
}

const noLog: Log = () => {};

// ---------------------------------------------------------------------------------------------
// Addresses, and whether a broker answers there.

interface HostPort {
  readonly host: string;
  readonly port: number;
}

function parseBroker(broker: string): HostPort {
  const at = broker.lastIndexOf(':');
  const port = Number(broker.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new Error(`Kafka broker must be host:port, got "${broker}"`);
  }
  return { host: broker.slice(0, at), port };
}

function isLocalHost(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '[::1]';
}

/**
 * Tells whether a Kafka broker answers: for each `host:port` in `brokers` (in order) it connects
 * (ApiVersions) and asks for the cluster's metadata with the platform's Kafka client
 * (`probeKafka`), and requires the cluster to report at least one live broker. True as soon as one
 * broker answers; false when none does within `timeoutMs` each. Never throws.
 *
 * @param brokers - addresses as in `KAFKA_BROKERS`, e.g. `['127.0.0.1:9092']`
 * @param timeoutMs - how long one broker may take to connect and answer both requests
 */
export async function kafkaAnswers(brokers: readonly string[], timeoutMs = 2_000): Promise<boolean> {
  for (const broker of brokers) {
    try {
      // An address that is not host:port answers nothing, whatever kafkajs would make of it.
      parseBroker(broker);
      await probeKafka([broker], timeoutMs);
      return true;
    } catch {
      // try the next one
    }
  }
  return false;
}

/** True when something accepts TCP connections on the address (Kafka or not). */
function portOpen(target: HostPort, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ host: target.host, port: target.port });
    const done = (open: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(open);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Processes and files.

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped) counts as gone.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true;
  }
}

/** True when `pid` is alive and (where /proc tells) is a Kafka broker, not a recycled pid. */
function isKafkaProcess(pid: number): boolean {
  if (!processAlive(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka');
  } catch {
    return true;
  }
}

/** Pid of the broker this repository started, when that process is still running. */
function managedPid(f: BrokerFiles): number | undefined {
  const pid = readPid(f.pid);
  return pid !== undefined && isKafkaProcess(pid) ? pid : undefined;
}

/** Size of a file, 0 when it does not exist. */
function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * The last `lines` lines a log got since byte `from`, without Java stack frames, so the message
 * shows the exceptions and their causes rather than the frames between them.
 */
function tail(file: string, lines: number, from = 0): string {
  try {
    const text = fs.readFileSync(file).subarray(from).toString('utf8');
    return text
      .split('\n')
      .filter((line) => line.trim() && !/^\s+(at |\.\.\. \d+ more)/.test(line))
      .slice(-lines)
      .join('\n');
  } catch {
    return '';
  }
}

/** The tails of the broker's stdout and of its server.log since this start (`serverLogFrom`). */
function brokerLogTail(f: BrokerFiles, serverLogFrom = 0): string {
  const parts = [
    ['stdout.log', tail(f.stdout, 20)],
    ['logs/server.log', tail(f.serverLog, 20, serverLogFrom)],
  ]
    .filter(([, text]) => text)
    .map(([name, text]) => `--- ${path.join(path.relative(REPO_ROOT, f.home), name)} (last lines, stack frames left out) ---\n${text}`);
  return parts.length ? `\n${parts.join('\n')}` : '\n(the broker wrote no log)';
}

/**
 * Runs `fn` while holding `.data/kafka/start.lock`, so two processes (say `npm test` and
 * `npm start`) calling {@link ensureKafka} at once do not start two brokers. A lock whose owner is
 * gone is taken over.
 */
async function withStartLock<T>(f: BrokerFiles, fn: () => Promise<T>, log: Log): Promise<T> {
  const deadline = Date.now() + START_TIMEOUT_MS + 30_000;
  let waiting = false;
  for (;;) {
    try {
      const fd = fs.openSync(f.lock, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = readPid(f.lock);
      if (owner === undefined || owner === process.pid || !processAlive(owner)) {
        fs.rmSync(f.lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`another process (pid ${owner}) holds ${f.lock} for too long`, { cause: error });
      if (!waiting) log(`waiting for pid ${owner}, which is starting Kafka`);
      waiting = true;
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    if (readPid(f.lock) === process.pid) fs.rmSync(f.lock, { force: true });
  }
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * The broker's Java classpath. Maven resolves it once from `scripts/kafka/pom.xml`; the result is
 * cached in `.data/kafka/classpath.txt` under a hash of the pom, so editing the pom re-resolves,
 * and so does a missing jar (say, a wiped `~/.m2`).
 */
function resolveClasspath(log: Log): string {
  const key = `# pom.xml sha256 ${sha256(POM)}`;
  try {
    const [header, classpath] = fs.readFileSync(CLASSPATH_FILE, 'utf8').split('\n');
    if (header === key && classpath && classpath.split(path.delimiter).every((jar) => fs.existsSync(jar))) return classpath;
  } catch {
    // not cached yet
  }
  log('resolving the Kafka broker jars with Maven (first run downloads them from Maven Central)');
  const output = path.join(KAFKA_HOME, 'classpath.maven.txt');
  const mvn = spawnSync('mvn', ['-B', '-q', '-f', POM, 'dependency:build-classpath', `-Dmdep.outputFile=${output}`], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 15 * 60_000,
  });
  if (mvn.error) {
    const hint = (mvn.error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (is Maven installed and on PATH?)' : '';
    throw new Error(`cannot run mvn${hint}: ${mvn.error.message}`);
  }
  if (mvn.status !== 0) {
    throw new Error(`mvn dependency:build-classpath failed (exit ${mvn.status}):\n${`${mvn.stdout}\n${mvn.stderr}`.trim().split('\n').slice(-30).join('\n')}`);
  }
  const classpath = fs.readFileSync(output, 'utf8').trim();
  fs.rmSync(output, { force: true });
  if (!classpath.includes('kafka_2.13')) throw new Error(`Maven resolved a classpath without kafka_2.13: ${classpath.slice(0, 200)}`);
  fs.writeFileSync(CLASSPATH_FILE, `${key}\n${classpath}\n`);
  return classpath;
}

function javaCommand(): string {
  const home = process.env.JAVA_HOME;
  if (home && fs.existsSync(path.join(home, 'bin', 'java'))) return path.join(home, 'bin', 'java');
  return 'java';
}

/** Writes `.data/kafka/server.properties` for a combined KRaft node on `host:port` (controller on port + 1). */
function writeServerProperties(f: BrokerFiles, target: HostPort): void {
  const host = target.host === 'localhost' ? '127.0.0.1' : target.host.replace(/^\[|\]$/g, '');
  const listenerHost = host.includes(':') ? `[${host}]` : host;
  const controller = `${listenerHost}:${target.port + 1}`;
  const properties = [
    '# Written by scripts/kafka/broker.ts on every start; edit that file, not this one.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@${controller}`,
    `listeners=PLAINTEXT://${listenerHost}:${target.port},CONTROLLER://${controller}`,
    `advertised.listeners=PLAINTEXT://${listenerHost}:${target.port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${f.data}`,
    'num.partitions=3',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'auto.create.topics.enable=false',
    'group.initial.rebalance.delay.ms=0',
    'delete.topic.enable=true',
    '',
  ];
  fs.writeFileSync(f.serverProperties, properties.join('\n'));
}

/** A Kafka cluster id: 16 random bytes, base64url without padding, never starting with '-' (as Kafka's Uuid.randomUuid). */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** The `host:port` the last written server.properties advertises, if any. */
function configuredBroker(f: BrokerFiles): string | undefined {
  try {
    return /^advertised\.listeners=PLAINTEXT:\/\/(.+)$/m.exec(fs.readFileSync(f.serverProperties, 'utf8'))?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/** Cluster id stored in the formatted data dir, if it has been formatted. */
function formattedClusterId(f: BrokerFiles): string | undefined {
  try {
    const meta = fs.readFileSync(path.join(f.data, 'meta.properties'), 'utf8');
    return /^cluster\.id=(.+)$/m.exec(meta)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

/** Formats the data dir unless an earlier run already did; keeps the cluster id across runs. */
function formatStorage(f: BrokerFiles, classpath: string, log: Log): void {
  const existing = formattedClusterId(f);
  if (existing) {
    fs.writeFileSync(f.clusterId, `${existing}\n`);
    return;
  }
  let clusterId: string | undefined;
  try {
    clusterId = fs.readFileSync(f.clusterId, 'utf8').trim() || undefined;
  } catch {
    // first run
  }
  clusterId ??= newClusterId();
  fs.writeFileSync(f.clusterId, `${clusterId}\n`);
  // A half-written data dir from an interrupted format has no meta.properties: start it afresh.
  fs.rmSync(f.data, { recursive: true, force: true });
  log(`formatting ${path.relative(REPO_ROOT, f.data)} (cluster id ${clusterId})`);
  const format = spawnSync(
    javaCommand(),
    [
      '-Xmx256m',
      `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
      `-Dkafka.logs.dir=${f.logs}`,
      '-cp',
      classpath,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      f.serverProperties,
    ],
    { cwd: f.home, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 },
  );
  if (format.error) throw new Error(`cannot run java (is a JDK 17+ installed?): ${format.error.message}`);
  if (format.status !== 0) {
    throw new Error(`kafka.tools.StorageTool format failed (exit ${format.status}):\n${`${format.stdout}\n${format.stderr}`.trim()}`);
  }
}

/** Waits until `broker` (parsed: `target`) answers both requests, failing early if process `pid` exits. */
async function waitUntilAnswering(f: BrokerFiles, broker: string, target: HostPort, pid: number, timeoutMs: number, serverLogFrom = 0): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      await probeKafka([broker], 2_000);
      return;
    } catch (error) {
      lastError = (error as Error).message;
    }
    if (!processAlive(pid)) {
      fs.rmSync(f.pid, { force: true });
      throw new Error(`the Kafka broker (pid ${pid}) exited while starting${brokerLogTail(f, serverLogFrom)}`);
    }
    await sleep(250);
  }
  throw new Error(
    `the Kafka broker (pid ${pid}) did not answer on ${target.host}:${target.port} within ${timeoutMs / 1000} s (${lastError}); it is left running, stop it with \`npm run kafka:stop\`${brokerLogTail(f, serverLogFrom)}`,
  );
}

/**
 * Makes sure the configured Kafka broker answers, starting a local one when needed.
 *
 * When the first broker of `KAFKA_BROKERS` answers, nothing happens (`started: false`). Otherwise,
 * if that broker is on 127.0.0.1/localhost, this resolves the broker jars with Maven (cached in
 * `.data/kafka/classpath.txt`), writes `.data/kafka/server.properties` for that port (controller on
 * port + 1), formats `.data/kafka/data` unless an earlier run did (the cluster id is kept), starts
 * `kafka.Kafka` detached in its own process group (output in `.data/kafka/stdout.log`, pid in
 * `.data/kafka/kafka.pid`), and waits up to 90 s until it answers ApiVersions and Metadata requests.
 * A broker this repository started earlier that is still booting is waited for, not started twice.
 * `home` (default `.data/kafka`) keeps another broker's files apart: a test starts a scratch broker
 * on its own port (KAFKA_BROKERS in `env`) that it may kill without touching the shared one.
 *
 * @throws when the broker is remote and does not answer, when the port is taken by something that
 *   is not Kafka, or when the broker fails to start (the message carries the tail of its logs).
 */
export async function ensureKafka(options: { log?: Log; env?: NodeJS.ProcessEnv; home?: string } = {}): Promise<EnsureKafkaResult> {
  const log = options.log ?? noLog;
  const f = brokerFiles(options.home);
  const config = loadConfig(options.env ?? process.env);
  const broker = config.kafkaBrokers[0];
  if (await kafkaAnswers([broker], 3_000)) return { started: false, broker };
  const target = parseBroker(broker);
  if (!isLocalHost(target.host)) {
    throw new Error(`Kafka does not answer on ${broker}; only a broker on 127.0.0.1/localhost is started by this script (check KAFKA_BROKERS)`);
  }
  fs.mkdirSync(f.logs, { recursive: true });
  return withStartLock(
    f,
    async () => {
      // Someone else may have started it while we waited for the lock, or an earlier start is still booting.
      if (await kafkaAnswers([broker], 3_000)) return { started: false, broker };
      const running = managedPid(f);
      const servedBy = configuredBroker(f);
      if (running !== undefined && servedBy !== undefined && servedBy !== `${target.host === 'localhost' ? '127.0.0.1' : target.host}:${target.port}`) {
        throw new Error(`the local Kafka broker (pid ${running}) serves ${servedBy}, not ${broker}; stop it with \`npm run kafka:stop\` to use another port`);
      }
      if (running !== undefined) {
        log(`Kafka (pid ${running}) is running but not answering yet; waiting`);
        await waitUntilAnswering(f, broker, target, running, START_TIMEOUT_MS);
        return { started: false, broker };
      }
      if (readPid(f.pid) !== undefined) {
        log('removing a stale kafka.pid (its process is gone)');
        fs.rmSync(f.pid, { force: true });
      }
      if ((await portOpen(target, 1_000)) && !(await kafkaAnswers([broker], 3_000))) {
        throw new Error(`${broker} accepts connections but does not answer as a Kafka broker; free the port or set KAFKA_BROKERS`);
      }
      const classpath = resolveClasspath(log);
      writeServerProperties(f, target);
      formatStorage(f, classpath, log);
      log(`starting Kafka on ${broker}`);
      const serverLogFrom = fileSize(f.serverLog);
      const out = fs.openSync(f.stdout, 'w');
      let pid: number;
      try {
        const child = spawn(
          javaCommand(),
          [
            '-Xms256m',
            '-Xmx512m',
            '-XX:+UseG1GC',
            '-XX:MaxGCPauseMillis=20',
            '-Djava.awt.headless=true',
            `-Dlog4j2.configurationFile=${LOG4J_CONFIG}`,
            `-Dkafka.logs.dir=${f.logs}`,
            '-cp',
            classpath,
            'kafka.Kafka',
            f.serverProperties,
          ],
          { cwd: f.home, detached: true, stdio: ['ignore', out, out] },
        );
        child.unref();
        pid = await new Promise<number>((resolve, reject) => {
          child.once('spawn', () => resolve(child.pid as number));
          child.once('error', (error) => reject(new Error(`cannot start java (is a JDK 17+ installed?): ${error.message}`)));
        });
      } finally {
        fs.closeSync(out);
      }
      fs.writeFileSync(f.pid, `${pid}\n`);
      const startedAt = Date.now();
      await waitUntilAnswering(f, broker, target, pid, START_TIMEOUT_MS, serverLogFrom);
      log(`Kafka answers on ${broker} (pid ${pid}, ${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
      return { started: true, broker, pid };
    },
    log,
  );
}

/**
 * Stops the broker this repository started (the pid in `.data/kafka/kafka.pid`): SIGTERM to its
 * process group, up to 30 s for a clean shutdown, then SIGKILL. Removes the pid file. Idempotent:
 * with no pid file, or a stale one, it only cleans up and reports `stopped: false`. A broker
 * started some other way (no pid file) is left alone. `home` names another broker's directory (a
 * scratch broker of a test, see {@link ensureKafka}); `signal: 'SIGKILL'` kills it at once.
 */
export async function stopKafka(options: { log?: Log; home?: string; signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<StopKafkaResult> {
  const log = options.log ?? noLog;
  const f = brokerFiles(options.home);
  const pid = readPid(f.pid);
  if (pid === undefined || !isKafkaProcess(pid)) {
    fs.rmSync(f.pid, { force: true });
    return { stopped: false };
  }
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pid, name); // its own process group (started detached)
    } catch {
      try {
        process.kill(pid, name);
      } catch {
        // already gone
      }
    }
  };
  if (options.signal === 'SIGKILL') {
    // A crash, not a shutdown: what a chaos test wants from the broker.
    log(`killing Kafka (pid ${pid})`);
    signal('SIGKILL');
    const killDeadline = Date.now() + 5_000;
    while (processAlive(pid) && Date.now() < killDeadline) await sleep(50);
    fs.rmSync(f.pid, { force: true });
    return { stopped: true, pid, killed: true };
  }
  log(`stopping Kafka (pid ${pid})`);
  signal('SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (processAlive(pid) && Date.now() < deadline) await sleep(200);
  let killed = false;
  if (processAlive(pid)) {
    log(`Kafka (pid ${pid}) ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s; killing it`);
    signal('SIGKILL');
    killed = true;
    const killDeadline = Date.now() + 5_000;
    while (processAlive(pid) && Date.now() < killDeadline) await sleep(100);
  }
  fs.rmSync(f.pid, { force: true });
  return { stopped: true, pid, killed };
}

/** Reports whether the configured broker answers and the state of the locally managed one. */
export async function kafkaStatus(options: { env?: NodeJS.ProcessEnv } = {}): Promise<KafkaStatus> {
  const config = loadConfig(options.env ?? process.env);
  const broker = config.kafkaBrokers[0];
  const f = brokerFiles();
  const clusterId = formattedClusterId(f);
  return {
    broker,
    answers: await kafkaAnswers(config.kafkaBrokers, 2_000),
    pid: managedPid(f),
    formatted: clusterId !== undefined,
    clusterId,
  };
}
