/**
 * docker-compose.yml is safe by default, and docker-compose.dev.yml (with scripts/docker/dev.env)
 * gives the development conveniences. There is no Docker engine on the machines that run the tests,
 * so the files are parsed (the `yaml` package), interpolated as compose does for the forms they
 * use, and each SwiftCart process's resulting environment is fed to the platform's own loadConfig.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { DEFAULT_SERVICE_PORTS, DEVELOPMENT_JWT_SECRET, REPO_ROOT, SERVICE_NAMES, loadConfig } from '@swiftcart/platform';
import { allowedOrigins } from '../gateway/src/origins.ts';

interface ComposeService {
  image?: string;
  container_name?: string;
  hostname?: string;
  command?: string[];
  restart?: string;
  ports?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
interface ComposeFile {
  services: Record<string, ComposeService>;
}

const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const BASE = read('docker-compose.yml');
const DEV = read('docker-compose.dev.yml');

/** `KEY=value` lines of an environment file. */
function envFile(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/**
 * Compose's interpolation for the forms these files use: `${VAR}`, `${VAR:-default}` (defaults
 * may nest) and `${VAR:?message}`, which fails when VAR is unset or empty.
 */
function interpolate(text: string, env: Record<string, string>): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith('$$', i)) {
      out += '$';
      i += 2;
      continue;
    }
    if (!text.startsWith('${', i)) {
      out += text[i++];
      continue;
    }
    let depth = 1;
    let j = i + 2;
    while (depth > 0) {
      if (j >= text.length) throw new Error(`unclosed \${ at ${i}`);
      if (text.startsWith('${', j)) {
        depth++;
        j += 2;
        continue;
      }
      if (text[j] === '}') depth--;
      j++;
    }
    const inner = text.slice(i + 2, j - 1);
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([\s\S]*))?$/.exec(inner);
    if (!match) throw new Error(`unsupported interpolation \${${inner}}`);
    const [, name, operator, rest] = match;
    const value = env[name];
    if (value) out += value;
    else if (operator === ':?') throw new Error(`required variable ${name} is missing a value: ${rest}`);
    else if (operator === ':-') out += interpolate(rest, env);
    i = j;
  }
  return out;
}

const load = (text: string, env: Record<string, string>) => parse(interpolate(text, env), { merge: true }) as ComposeFile;

/** The SwiftCart processes (built from this repository's image). */
const nodeServices = (file: ComposeFile) => Object.entries(file.services).filter(([, s]) => s.image === 'swiftcart:local');

/** What the base file requires: both secrets, and where e-mail goes. */
const SECRETS = { JWT_SECRET: 'j'.repeat(64), SUBGRAPH_SECRET: 's'.repeat(64), NOTIFICATION_SMTP_URL: 'smtp://relay.example:587' };

describe('docker-compose.yml: safe by default', () => {
  test('given no JWT_SECRET or SUBGRAPH_SECRET, then compose refuses to start, naming the variable', () => {
    assert.throws(() => load(BASE, {}), /required variable JWT_SECRET is missing a value: set JWT_SECRET/);
    assert.throws(() => load(BASE, { JWT_SECRET: SECRETS.JWT_SECRET }), /required variable SUBGRAPH_SECRET is missing a value/);
    assert.throws(
      () => load(BASE, { JWT_SECRET: SECRETS.JWT_SECRET, SUBGRAPH_SECRET: SECRETS.SUBGRAPH_SECRET }),
      /required variable NOTIFICATION_SMTP_URL is missing a value: set NOTIFICATION_SMTP_URL to your mail relay/,
      'no silent default relay: e-mail marked SENT must have gone somewhere on purpose',
    );
    // Every mention of either secret is the required form: no default anywhere, and not the public one.
    for (const name of ['JWT_SECRET', 'SUBGRAPH_SECRET']) {
      const uses = [...BASE.matchAll(new RegExp(`\\$\\{${name}([^}]*)\\}`, 'g'))].map((m) => m[1]);
      assert.ok(uses.length > 0, name);
      for (const use of uses) assert.match(use, /^:\?/, `${name} used as \${${name}${use}}`);
    }
    assert.doesNotMatch(BASE, new RegExp(DEVELOPMENT_JWT_SECRET));
  });

  test('given both secrets, then every SwiftCart process runs in production mode and its configuration loads', () => {
    const compose = load(BASE, SECRETS);
    const names = nodeServices(compose)
      .map(([name]) => name)
      .sort();
    assert.deepEqual(names, [...SERVICE_NAMES, 'gateway', 'migrate', 'storefront'].sort());
    for (const [name, service] of nodeServices(compose)) {
      assert.equal(service.environment?.NODE_ENV, 'production', name);
      if (name === 'storefront') continue;
      const config = loadConfig(service.environment);
      assert.equal(config.env, 'production');
      assert.equal(config.jwtSecret, SECRETS.JWT_SECRET, name);
      assert.equal(config.subgraphSecret, SECRETS.SUBGRAPH_SECRET, name);
    }
  });

  test('only the gateway and the storefront are published on host ports', () => {
    const compose = load(BASE, SECRETS);
    const published = Object.entries(compose.services)
      .filter(([, s]) => s.ports?.length)
      .map(([name]) => name)
      .sort();
    assert.deepEqual(published, ['gateway', 'storefront']);
    assert.deepEqual(compose.services.gateway.ports, ['4000:4000']);
    assert.deepEqual(compose.services.storefront.ports, ['5173:5173']);
  });

  test('every service scales with `docker compose up --scale <service>=N`: no published port, container name or host name', () => {
    // The override adds environment only to the services; the dev suite below checks it publishes none of them.
    const override = load(DEV, envFile(read('scripts/docker/dev.env')));
    for (const compose of [load(BASE, SECRETS), override]) {
      for (const name of SERVICE_NAMES) {
        const svc = compose.services[name] ?? {};
        assert.deepEqual([svc.ports, svc.container_name, svc.hostname], [undefined, undefined, undefined], name);
      }
    }
  });

  test('every long-running container has a restart policy and a healthcheck on its own port', () => {
    const compose = load(BASE, SECRETS);
    for (const [name, service] of Object.entries(compose.services)) {
      if (name === 'migrate') {
        assert.equal(service.restart, 'no');
        continue;
      }
      assert.ok(['unless-stopped', 'always', 'on-failure'].includes(service.restart ?? ''), `${name} restart: ${service.restart}`);
      assert.ok(service.healthcheck?.test?.length, `${name} has a healthcheck`);
    }
    const probe = (name: string) => service(compose, name).healthcheck!.test.join(' ');
    for (const name of SERVICE_NAMES) assert.match(probe(name), new RegExp(`127\\.0\\.0\\.1:${DEFAULT_SERVICE_PORTS[name]}/readyz`), name);
    assert.match(probe('gateway'), /127\.0\.0\.1:4000\/readyz/);
    assert.match(probe('storefront'), /127\.0\.0\.1:5173\/healthz/);
    assert.match(probe('prometheus'), /127\.0\.0\.1:9090\/-\/ready/);
    assert.match(probe('grafana'), /127\.0\.0\.1:3000\/api\/health/);
    assert.equal(compose.services.storefront.depends_on?.gateway.condition, 'service_healthy');
    assert.equal(compose.services.grafana.depends_on?.prometheus.condition, 'service_healthy');
  });

  test('Prometheus scrapes the gateway and every service by compose name, with the alert rules', () => {
    const compose = load(BASE, SECRETS);
    const mounts = mountsOf(service(compose, 'prometheus'));
    assert.equal(mounts.get('/etc/prometheus/prometheus.yml'), 'deploy/prometheus/prometheus.compose.yml');
    const config = parse(read('deploy/prometheus/prometheus.compose.yml')) as {
      rule_files: string[];
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    // Rule files are named relative to the configuration, so they are mounted beside it.
    for (const rules of config.rule_files) assert.equal(mounts.get(path.posix.join('/etc/prometheus', rules)), path.posix.join('deploy/prometheus', rules));
    const targets = config.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    assert.deepEqual(targets.sort(), ['gateway:4000', ...SERVICE_NAMES.map((name) => `${name}:${DEFAULT_SERVICE_PORTS[name]}`)].sort());
    assert.equal(service(compose, 'gateway').environment?.GATEWAY_PORT, '4000');
  });

  test('Grafana is provisioned from the repository: the Prometheus datasource and the SwiftCart dashboard', () => {
    const compose = load(BASE, SECRETS);
    const grafana = service(compose, 'grafana');
    const mounts = mountsOf(grafana);
    assert.equal(mounts.get('/etc/grafana/provisioning'), 'deploy/grafana/provisioning');
    const [datasource] = (parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as { datasources: { uid: string; url: string }[] }).datasources;
    assert.equal(datasource.url, 'http://prometheus:9090');
    const [provider] = (parse(read('deploy/grafana/provisioning/dashboards/swiftcart.yml')) as { providers: { options: { path: string } }[] }).providers;
    const dashboards = mounts.get(provider.options.path);
    assert.equal(dashboards, 'deploy/grafana/dashboards');
    const home = grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    assert.equal(path.posix.dirname(home), provider.options.path);
    const dashboard = JSON.parse(read(path.posix.join(dashboards, path.posix.basename(home)))) as { uid: string; panels: { datasource?: { uid: string } }[] };
    assert.equal(dashboard.uid, 'swiftcart');
    for (const panel of dashboard.panels) if (panel.datasource) assert.equal(panel.datasource.uid, datasource.uid);
    assert.equal(grafana.environment!.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer');
  });

  test('three Kafka brokers in one KRaft quorum; the services create topics with three copies, two in sync', () => {
    const compose = load(BASE, SECRETS);
    const brokers = ['kafka-1', 'kafka-2', 'kafka-3'];
    assert.deepEqual(
      Object.keys(compose.services)
        .filter((name) => name.startsWith('kafka'))
        .sort(),
      brokers,
    );
    brokers.forEach((name, i) => {
      const env = service(compose, name).environment!;
      assert.equal(env.KAFKA_NODE_ID, String(i + 1), name);
      assert.equal(env.KAFKA_CONTROLLER_QUORUM_VOTERS, '1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093', name);
      assert.equal(env.KAFKA_ADVERTISED_LISTENERS, `PLAINTEXT://${name}:9092`, name);
      assert.equal(env.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, '3', name);
      assert.equal(env.KAFKA_MIN_INSYNC_REPLICAS, '2', name);
    });
    for (const name of SERVICE_NAMES) {
      const config = loadConfig(service(compose, name).environment);
      assert.deepEqual(config.kafkaBrokers, ['kafka-1:9092', 'kafka-2:9092', 'kafka-3:9092'], name);
      assert.deepEqual([config.kafkaReplicationFactor, config.kafkaMinInsyncReplicas], [3, 2], name);
      for (const broker of brokers) assert.equal(service(compose, name).depends_on?.[broker].condition, 'service_healthy', `${name} waits for ${broker}`);
    }
  });

  test('the storefront holds no secret, runs the storefront server, and the gateway allows its origin', () => {
    const compose = load(BASE, SECRETS);
    const storefront = service(compose, 'storefront');
    assert.deepEqual(storefront.command, ['node', 'clients/storefront/server.ts']);
    assert.equal(storefront.environment?.STOREFRONT_GATEWAY_URL, 'http://gateway:4000');
    assert.equal(storefront.environment?.JWT_SECRET, undefined);
    assert.equal(storefront.environment?.SUBGRAPH_SECRET, undefined);
    const gateway = loadConfig(service(compose, 'gateway').environment);
    assert.deepEqual(allowedOrigins(gateway), ['http://localhost:5173', 'http://127.0.0.1:5173']);
    const moved = loadConfig(service(load(BASE, { ...SECRETS, STOREFRONT_HOST_PORT: '8080' }), 'gateway').environment);
    assert.deepEqual(allowedOrigins(moved), ['http://localhost:8080', 'http://127.0.0.1:8080']);
  });

  test('the image builds the storefront bundle in a stage of its own and ships it', () => {
    const dockerfile = read('Dockerfile');
    assert.match(dockerfile, /FROM node:24-slim AS storefront[\s\S]*buildStorefront\(\)/);
    assert.match(dockerfile, /COPY --from=storefront \/build\/clients\/storefront\/dist\/ \.\/clients\/storefront\/dist\//);
    assert.match(read('.dockerignore'), /^clients\/storefront\/dist$/m);
  });
});

describe('docker-compose.dev.yml with scripts/docker/dev.env: the development conveniences', () => {
  const devEnv = envFile(read('scripts/docker/dev.env'));

  /** The base file with the override applied as compose merges these keys (mappings by key, ports appended). */
  function merged(env: Record<string, string>): ComposeFile {
    const base = load(BASE, env);
    const dev = load(DEV, env);
    for (const [name, override] of Object.entries(dev.services)) {
      const target = service(base, name);
      if (override.environment) target.environment = { ...target.environment, ...override.environment };
      if (override.ports) target.ports = [...(target.ports ?? []), ...override.ports];
    }
    return base;
  }

  test('dev.env holds the public development secrets, which production refuses', () => {
    assert.equal(devEnv.JWT_SECRET, DEVELOPMENT_JWT_SECRET);
    assert.ok(devEnv.SUBGRAPH_SECRET.length >= 32);
    // The base file alone with dev.env: every process refuses the public secret in production mode.
    for (const [name, svc] of nodeServices(load(BASE, devEnv))) {
      if (name !== 'storefront') assert.throws(() => loadConfig(svc.environment), /JWT_SECRET must be set in production/, name);
    }
  });

  test('every SwiftCart process runs in development mode with the development secrets', () => {
    const compose = merged(devEnv);
    for (const [name, svc] of nodeServices(compose)) {
      assert.equal(svc.environment?.NODE_ENV, 'development', name);
      const config = loadConfig(svc.environment);
      assert.equal(config.env, 'development', name);
      assert.equal(config.jwtSecret, DEVELOPMENT_JWT_SECRET, name);
    }
    // The storefront's demo sign-in signs with the secret the services verify with.
    assert.equal(service(compose, 'storefront').environment?.JWT_SECRET, DEVELOPMENT_JWT_SECRET);
  });

  test('the infrastructure is published on the host, each Kafka broker with a listener for it', () => {
    const compose = merged(devEnv);
    assert.deepEqual(
      ['kafka-1', 'kafka-2', 'kafka-3'].map((name) => service(compose, name).ports),
      [['9094:9094'], ['9095:9095'], ['9096:9096']],
    );
    assert.deepEqual(service(compose, 'postgres').ports, ['5432:5432']);
    assert.deepEqual(service(compose, 'redis').ports, ['6379:6379']);
    assert.deepEqual(service(compose, 'jaeger').ports, ['16686:16686']);
    assert.deepEqual(service(compose, 'prometheus').ports, ['9090:9090']);
    assert.deepEqual(service(compose, 'grafana').ports, ['3000:3000']);
    assert.match(service(compose, 'kafka-1').environment!.KAFKA_ADVERTISED_LISTENERS, /^PLAINTEXT:\/\/kafka-1:9092,HOST:\/\/localhost:9094$/);
    assert.match(service(compose, 'kafka-3').environment!.KAFKA_ADVERTISED_LISTENERS, /^PLAINTEXT:\/\/kafka-3:9092,HOST:\/\/localhost:9096$/);
    for (const name of SERVICE_NAMES) assert.equal(service(compose, name).ports, undefined, `${name} stays unpublished`);
  });
});

/** A service's bind mounts: the path in the container to the repository path (`./...`, read-only) it comes from. */
function mountsOf(svc: ComposeService): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const volume of svc.volumes ?? []) {
    const [source, target, mode] = volume.split(':');
    if (!source.startsWith('./')) continue;
    assert.equal(mode, 'ro', volume);
    assert.ok(existsSync(path.join(REPO_ROOT, source)), `${source} exists`);
    mounts.set(target, path.posix.normalize(source));
  }
  return mounts;
}

function service(file: ComposeFile, name: string): ComposeService {
  const found = file.services[name];
  assert.ok(found, `service ${name}`);
  return found;
}
