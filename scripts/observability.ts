/**
 * The trace backend and the metrics server that `npm start` runs beside the platform, without
 * Docker: Zipkin's server (the `exec` jar from Maven Central, on the Java the Kafka broker needs
 * anyway; spans are kept in memory) and Debian's Prometheus (installed on first use when this
 * process may, with a scrape configuration generated for the processes this run starts and the
 * alert rules of deploy/prometheus/alerts.yml). The tests' scratch Zipkin (test/support) uses the
 * same jar.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@swiftcart/platform/config';
import { type Log, installDebianPackage } from './infra.ts';

const run = promisify(execFile);

/** The Zipkin server release (io.zipkin:zipkin-server, classifier exec). */
export const ZIPKIN_VERSION = '3.5.1';
/** Where the jar is cached, beside the Kafka broker's files. */
export const ZIPKIN_HOME = path.join(REPO_ROOT, '.data', 'zipkin');
/** Zipkin's usual port: its UI, its query API and its span intake. */
export const DEFAULT_ZIPKIN_PORT = 9411;
/** Prometheus's usual port. */
export const DEFAULT_PROMETHEUS_PORT = 9090;
/** The alert rules, loaded by every Prometheus that scrapes the platform. */
export const ALERT_RULES = path.join(REPO_ROOT, 'deploy', 'prometheus', 'alerts.yml');
/** Debian's Prometheus binary. */
export const PROMETHEUS_BINARY = '/usr/bin/prometheus';

/** The path of Zipkin's jar, resolved from Maven Central with `mvn` on first use (about 130 MB). */
export async function ensureZipkinJar(log: Log = () => {}): Promise<string> {
  const jar = path.join(ZIPKIN_HOME, `zipkin-server-${ZIPKIN_VERSION}-exec.jar`);
  if (existsSync(jar)) return jar;
  mkdirSync(ZIPKIN_HOME, { recursive: true });
  log(`resolving Zipkin ${ZIPKIN_VERSION} from Maven Central (once; cached in ${path.relative(REPO_ROOT, ZIPKIN_HOME)})...`);
  try {
    // Not spawnSync: the rest of a start-up goes on meanwhile.
    await run('mvn', ['-B', '-q', 'dependency:copy', `-Dartifact=io.zipkin:zipkin-server:${ZIPKIN_VERSION}:jar:exec`, `-DoutputDirectory=${ZIPKIN_HOME}`], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const failed = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') throw new Error('cannot run mvn (is Maven installed and on PATH?)', { cause: error });
    throw new Error(
      `mvn could not fetch io.zipkin:zipkin-server:${ZIPKIN_VERSION}:exec:\n${`${failed.stdout ?? ''}\n${failed.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n')}`,
      { cause: error },
    );
  }
  if (!existsSync(jar)) throw new Error(`mvn finished, but ${jar} does not exist`);
  return jar;
}

/** The command that runs Zipkin's server on `port` from `jar`, in memory, on a small heap. */
export function zipkinCommand(jar: string, port: number): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  return {
    command: 'java',
    args: ['-Xms64m', '-Xmx384m', '-XX:+UseSerialGC', '-jar', jar],
    // Zipkin reads its settings from the environment: the port, and in-memory storage with a cap.
    env: { QUERY_PORT: String(port), STORAGE_TYPE: 'mem', MEM_MAX_SPANS: '200000', JAVA_OPTS: '' },
  };
}

/**
 * Debian's Prometheus, installed with apt-get on first use when this process is root; null (and
 * `log` says how to get it) when it cannot be.
 */
export function ensurePrometheus(log: Log = () => {}): string | null {
  try {
    installDebianPackage('prometheus', PROMETHEUS_BINARY, 'the metrics of npm start', log);
    return PROMETHEUS_BINARY;
  } catch (error) {
    log(`Prometheus is not started: ${(error as Error).message}`);
    return null;
  }
}

/**
 * Writes a scrape configuration for `targets` (host:port of every process) with the platform's
 * alert rules into `dir`, and returns its path.
 */
export function writePrometheusConfig(dir: string, targets: readonly string[], scrapeIntervalSeconds = 5): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'prometheus.yml');
  writeFileSync(
    file,
    `# Written by npm start for the processes of this run (scripts/observability.ts).
global:
  scrape_interval: ${scrapeIntervalSeconds}s
  evaluation_interval: ${scrapeIntervalSeconds}s
rule_files:
  - ${JSON.stringify(ALERT_RULES)}
scrape_configs:
  - job_name: swiftcart
    metrics_path: /metrics
    static_configs:
      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]
`,
  );
  return file;
}

/** The command that runs Prometheus on `port` with `configFile`, its data in `dataDir`. */
export function prometheusCommand(binary: string, configFile: string, dataDir: string, host: string, port: number): { command: string; args: string[] } {
  return {
    command: binary,
    args: [`--config.file=${configFile}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=${host}:${port}`, '--storage.tsdb.retention.time=2d'],
  };
}
