/**
 * SwiftCart's Kubernetes manifests (deploy/k8s, docs/deploy.md), checked without a cluster: the
 * generated base is up to date, every overlay renders with `kubectl kustomize`, every rendered
 * object validates against the Kubernetes schemas (kubernetes-models), and the policies hold. Each
 * policy is also run on a copy broken on purpose, so that it is known to catch what it is for.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, SERVICE_NAMES } from '../platform/src/config.ts';
import { installDebianPackage } from '../scripts/infra.ts';
import {
  BASE_FILE,
  CONSUMER_GROUPS,
  DASHBOARD_FILE,
  ENGINES_FILE,
  KAFKA_PARTITIONS,
  OBSERVABILITY_FILE,
  CONFIG_MAP,
  renderBase,
  renderEngines,
  renderObservability,
} from '../scripts/k8s.ts';

type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: any;
  data?: unknown;
  stringData?: unknown;
};

const OVERLAYS = ['dev', 'prod'] as const;
/** The longest a process drains before it exits anyway (platform/src/service.ts, gateway/src/main.ts). */
const DRAIN_SECONDS = 15;
const KUBECTL = '/usr/bin/kubectl';

function render(overlay: string): Manifest[] {
  const text = execFileSync(KUBECTL, ['kustomize', path.join(REPO_ROOT, 'deploy', 'k8s', 'overlays', overlay)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((document) => document.toJS() as Manifest);
}

function podSpecOf(manifest: Manifest): any {
  return manifest.kind === 'Deployment' || manifest.kind === 'Job' ? manifest.spec.template.spec : undefined;
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

/** The kubernetes-models module that validates `manifest`: Kubernetes' own, or the operators' CRDs (KEDA, Strimzi, CloudNativePG). */
function modelOf(manifest: Manifest): string {
  const group = manifest.apiVersion.includes('/') ? manifest.apiVersion.split('/')[0] : '';
  const packages: Record<string, string> = {
    'keda.sh': '@kubernetes-models/keda',
    'kafka.strimzi.io': '@kubernetes-models/strimzi-kafka-operator',
    'postgresql.cnpg.io': '@kubernetes-models/cloudnative-pg',
    'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
  };
  return `${packages[group] ?? 'kubernetes-models'}/${manifest.apiVersion}/${manifest.kind}`;
}

// --- Policies: each returns what breaks it, empty when it holds ---------------------------------

/**
 * Probes on /readyz and /healthz, resources, a non-root user and a read-only root filesystem, a PDB;
 * behind a Service, a preStop pause while the endpoints drop the pod; a grace longer than that pause and the drain.
 */
function deploymentViolations(manifests: readonly Manifest[]): string[] {
  const violations: string[] = [];
  const budgets = manifests.filter((m) => m.kind === 'PodDisruptionBudget');
  const services = manifests.filter((m) => m.kind === 'Service' && m.spec.selector);
  for (const deployment of manifests.filter((m) => m.kind === 'Deployment')) {
    const name = deployment.metadata.name;
    const pod = podSpecOf(deployment);
    const podLabels = deployment.spec.template.metadata.labels;
    if (!pod.securityContext?.runAsNonRoot) violations.push(`${name}: the pod may run as root`);
    const served = services.some((service) => matches(service.spec.selector, podLabels));
    const pause = Math.max(0, ...pod.containers.map((c: any) => c.lifecycle?.preStop?.sleep?.seconds ?? 0));
    if (served && !(pause > 0)) violations.push(`${name}: behind a Service without a preStop pause for the endpoints to drop it`);
    if (!(pod.terminationGracePeriodSeconds > pause + DRAIN_SECONDS))
      violations.push(
        `${name}: termination grace of ${pod.terminationGracePeriodSeconds} s is not longer than the ${pause} s pause and the ${DRAIN_SECONDS} s drain`,
      );
    for (const container of pod.containers) {
      const where = `${name}/${container.name}`;
      if (container.readinessProbe?.httpGet?.path !== '/readyz') violations.push(`${where}: no readiness probe on /readyz`);
      if (container.livenessProbe?.httpGet?.path !== '/healthz') violations.push(`${where}: no liveness probe on /healthz`);
      if (!container.resources?.requests?.cpu || !container.resources?.requests?.memory || !container.resources?.limits?.memory)
        violations.push(`${where}: no CPU and memory requests and memory limit`);
      if (!container.securityContext?.runAsNonRoot || !(container.securityContext?.runAsUser > 0)) violations.push(`${where}: not a non-root user`);
      if (!container.securityContext?.readOnlyRootFilesystem) violations.push(`${where}: the root filesystem is writable`);
      if (container.securityContext?.allowPrivilegeEscalation !== false) violations.push(`${where}: privilege escalation is allowed`);
    }
    if (!budgets.some((budget) => matches(budget.spec.selector.matchLabels, podLabels))) violations.push(`${name}: no PodDisruptionBudget`);
  }
  return violations;
}

/** Every subgraph's API accepts traffic only from the gateway (and named callers, and monitoring). */
function networkPolicyViolations(manifests: readonly Manifest[]): string[] {
  const violations: string[] = [];
  const policies = manifests.filter((m) => m.kind === 'NetworkPolicy');
  for (const name of SERVICE_NAMES) {
    const deployment = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === `${name}-api`);
    if (!deployment) {
      violations.push(`${name}: no api Deployment`);
      continue;
    }
    const policy = policies.find((p) => matches(p.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels));
    if (!policy) {
      violations.push(`${name}: no NetworkPolicy selects its api pods`);
      continue;
    }
    const sources = (policy.spec.ingress ?? []).flatMap((rule: any) => rule.from ?? []);
    if (sources.length === 0) violations.push(`${name}: its NetworkPolicy lets everyone in`);
    if (!sources.some((source: any) => source.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'gateway'))
      violations.push(`${name}: the gateway may not call it`);
  }
  return violations;
}

const SECRET_NAME = /SECRET|PASSWORD|TOKEN|SMTP_URL|DATABASE_URL/;

/** No Secret carries a value, and no variable that holds a secret has one written in. */
function secretViolations(manifests: readonly Manifest[]): string[] {
  const violations: string[] = [];
  for (const manifest of manifests) {
    if (manifest.kind === 'Secret' && (manifest.data || manifest.stringData)) violations.push(`Secret ${manifest.metadata.name} carries values`);
    if (manifest.kind === 'ConfigMap') {
      for (const key of Object.keys((manifest.data as object) ?? {}))
        if (SECRET_NAME.test(key)) violations.push(`ConfigMap ${manifest.metadata.name} holds ${key}`);
    }
    for (const container of podSpecOf(manifest)?.containers ?? []) {
      for (const variable of container.env ?? []) {
        if (SECRET_NAME.test(variable.name) && variable.value !== undefined)
          violations.push(`${manifest.metadata.name}: ${variable.name} is written in, not read from a Secret`);
      }
    }
  }
  return violations;
}

/** Every image names a tag that is not `latest`, or a digest. */
function imageViolations(manifests: readonly Manifest[]): string[] {
  const violations: string[] = [];
  for (const manifest of manifests) {
    for (const container of podSpecOf(manifest)?.containers ?? []) {
      const image: string = container.image;
      const tag = image.includes('@') ? 'digest' : image.slice(image.lastIndexOf('/') + 1).split(':')[1];
      if (!tag || tag === 'latest') violations.push(`${manifest.metadata.name}: image ${image} is not pinned`);
    }
  }
  return violations;
}

/** A migration Job per service, an HPA for the gateway and every api. */
function rolloutViolations(manifests: readonly Manifest[]): string[] {
  const violations: string[] = [];
  for (const name of SERVICE_NAMES) {
    const job = manifests.find((m) => m.kind === 'Job' && m.metadata.name === `${name}-migrate`);
    if (podSpecOf(job ?? ({ kind: '' } as Manifest))?.containers[0].command.join(' ') !== `node scripts/migrate.ts ${name}`)
      violations.push(`${name}: no migration Job`);
  }
  for (const name of ['gateway', ...SERVICE_NAMES.map((s) => `${s}-api`)]) {
    if (!manifests.some((m) => m.kind === 'HorizontalPodAutoscaler' && m.spec.scaleTargetRef.name === name))
      violations.push(`${name}: no HorizontalPodAutoscaler`);
  }
  return violations;
}

/**
 * The engines: every worker with consumer groups scales on their lag (KEDA), a database per
 * service and a NetworkPolicy in front of it, Kafka and its topics with three copies (two in
 * sync for a write) in production.
 */
function engineViolations(manifests: readonly Manifest[], production = true): string[] {
  const violations: string[] = [];
  for (const scaler of manifests.filter((m) => m.kind === 'ScaledObject')) {
    const triggers = scaler.spec.triggers ?? [];
    if (triggers.length === 0 || triggers.some((t: any) => t.type !== 'kafka' || !t.metadata.consumerGroup))
      violations.push(`${scaler.metadata.name}: not scaled on consumer lag`);
    if (manifests.some((m) => m.kind === 'HorizontalPodAutoscaler' && m.spec.scaleTargetRef.name === scaler.spec.scaleTargetRef.name))
      violations.push(`${scaler.metadata.name}: an HPA too`);
  }
  for (const name of Object.keys(CONSUMER_GROUPS)) {
    if (!manifests.some((m) => m.kind === 'ScaledObject' && m.spec.scaleTargetRef.name === `${name}-worker`))
      violations.push(`${name}-worker: no ScaledObject`);
  }
  const policies = manifests.filter((m) => m.kind === 'NetworkPolicy');
  for (const name of SERVICE_NAMES) {
    if (!manifests.some((m) => m.kind === 'Cluster' && m.metadata.name === `${name}-db`)) violations.push(`${name}: no PostgreSQL Cluster`);
    const policy = policies.find((p) => p.spec.podSelector.matchLabels['cnpg.io/cluster'] === `${name}-db`);
    const sources = (policy?.spec.ingress ?? []).flatMap((rule: any) => rule.from ?? []);
    const names = sources.map((source: any) => source.podSelector?.matchLabels?.['app.kubernetes.io/name']).filter(Boolean);
    if (!policy || !names.includes(`${name}-api`) || names.some((n: string) => !n.startsWith(`${name}-`)))
      violations.push(`${name}-db: not reserved to ${name}'s pods`);
  }
  if (!policies.some((p) => p.spec.podSelector.matchLabels['strimzi.io/cluster'])) violations.push('kafka: no NetworkPolicy');
  // What the processes are told (the ConfigMap) is what the topics are: partitions bound the workers
  // per group, and the producers' acks wait for the in-sync copies the topic requires.
  const config = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === CONFIG_MAP)?.data as Record<string, string> | undefined;
  for (const topic of manifests.filter((m) => m.kind === 'KafkaTopic')) {
    const told = [config?.KAFKA_PARTITIONS, config?.KAFKA_REPLICATION_FACTOR, config?.KAFKA_MIN_INSYNC_REPLICAS].map(Number);
    const is = [topic.spec.partitions, topic.spec.replicas, Number(topic.spec.config['min.insync.replicas'])];
    if (told.some((value, i) => value !== is[i]))
      violations.push(`${topic.metadata.name}: ${CONFIG_MAP} says partitions/copies/in-sync ${told.join('/')}, the topic has ${is.join('/')}`);
  }
  for (const scaler of manifests.filter((m) => m.kind === 'ScaledObject'))
    if (scaler.spec.maxReplicaCount > Number(config?.KAFKA_PARTITIONS))
      violations.push(`${scaler.metadata.name}: up to ${scaler.spec.maxReplicaCount} workers for ${config?.KAFKA_PARTITIONS} partitions`);
  if (production) {
    for (const topic of manifests.filter((m) => m.kind === 'KafkaTopic')) {
      if (topic.spec.replicas < 3 || topic.spec.config['min.insync.replicas'] !== 2) violations.push(`${topic.metadata.name}: not 3 copies with 2 in sync`);
      if (topic.spec.partitions !== KAFKA_PARTITIONS) violations.push(`${topic.metadata.name}: ${topic.spec.partitions} partitions`);
    }
    for (const pool of manifests.filter((m) => m.kind === 'KafkaNodePool'))
      if (pool.spec.replicas < 3) violations.push(`${pool.metadata.name}: fewer than 3 Kafka nodes`);
    for (const cluster of manifests.filter((m) => m.kind === 'Cluster'))
      if (cluster.spec.instances < 2) violations.push(`${cluster.metadata.name}: one PostgreSQL instance`);
  }
  return violations;
}

/** Every Deployment's pods are scraped (annotations, and the PodMonitor), and the dashboard ships as the repository has it. */
function observabilityViolations(manifests: readonly Manifest[]): string[] {
  const violations: string[] = [];
  const monitors = manifests.filter((m) => m.kind === 'PodMonitor');
  for (const deployment of manifests.filter((m) => m.kind === 'Deployment')) {
    const template = deployment.spec.template;
    const annotations = template.metadata.annotations ?? {};
    if (annotations['prometheus.io/scrape'] !== 'true' || annotations['prometheus.io/path'] !== '/metrics')
      violations.push(`${deployment.metadata.name}: no scrape annotations`);
    const scraped = monitors.some((monitor) => {
      const { matchLabels = {}, matchExpressions = [] } = monitor.spec.selector;
      const labels = template.metadata.labels;
      return matches(matchLabels, labels) && matchExpressions.every((e: any) => e.operator === 'In' && e.values.includes(labels[e.key]));
    });
    if (!scraped) violations.push(`${deployment.metadata.name}: no PodMonitor selects it`);
  }
  const dashboard = manifests.find((m) => m.kind === 'ConfigMap' && (m.metadata.labels ?? {}).grafana_dashboard === '1');
  if ((dashboard?.data as Record<string, string> | undefined)?.['swiftcart.json'] !== readFileSync(DASHBOARD_FILE, 'utf8'))
    violations.push('the Grafana dashboard ConfigMap is not deploy/grafana/dashboards/swiftcart.json');
  return violations;
}

const POLICIES = {
  deployments: deploymentViolations,
  'network policies': networkPolicyViolations,
  secrets: secretViolations,
  images: imageViolations,
  rollout: rolloutViolations,
  observability: observabilityViolations,
  // The dev overlay runs one Kafka node and one PostgreSQL instance on purpose.
  engines: (manifests: readonly Manifest[]) =>
    engineViolations(manifests, !manifests.some((m) => (m.metadata as { namespace?: string }).namespace === 'swiftcart-dev')),
};

describe('Kubernetes manifests', () => {
  const rendered = new Map<string, Manifest[]>();

  before(() => {
    installDebianPackage('kubectl', KUBECTL, 'the Kubernetes manifest checks', console.log);
    for (const overlay of OVERLAYS) rendered.set(overlay, render(overlay));
  });

  it('the generated base is up to date (npm run k8s:base)', () => {
    for (const [file, render] of [
      [BASE_FILE, renderBase],
      [ENGINES_FILE, renderEngines],
      [OBSERVABILITY_FILE, renderObservability],
    ] as const) {
      assert.equal(readFileSync(file, 'utf8'), render(), `${path.relative(REPO_ROOT, file)} is stale: run npm run k8s:base`);
    }
  });

  for (const overlay of OVERLAYS) {
    it(`overlay ${overlay}: renders, with the gateway and an api and a worker per service`, () => {
      const manifests = rendered.get(overlay)!;
      const deployments = manifests.filter((m) => m.kind === 'Deployment').map((m) => m.metadata.name);
      assert.deepEqual(deployments.sort(), ['gateway', ...SERVICE_NAMES.flatMap((s) => [`${s}-api`, `${s}-worker`])].sort());
      assert.ok(
        manifests.every((m) => (m as { metadata: { namespace?: string } }).metadata.namespace?.startsWith('swiftcart')),
        'every object in its namespace',
      );
    });

    it(`overlay ${overlay}: every object validates against the Kubernetes schemas`, async () => {
      const manifests = rendered.get(overlay)!;
      for (const manifest of manifests) {
        const module = await import(modelOf(manifest));
        assert.doesNotThrow(() => new module[manifest.kind](manifest).validate(), `${manifest.kind} ${manifest.metadata.name}`);
      }
    });

    for (const [name, policy] of Object.entries(POLICIES)) {
      it(`overlay ${overlay}: the ${name} policy holds`, () => {
        assert.deepEqual(policy(rendered.get(overlay)!), []);
      });
    }
  }

  it('the schema check and each policy catch what they are for', async () => {
    const manifests = () => structuredClone(rendered.get('prod')!);
    const deployment = (all: Manifest[], name: string) => all.find((m) => m.kind === 'Deployment' && m.metadata.name === name)!;
    const remove = (all: Manifest[], kind: string, name: string) => {
      const index = all.findIndex((m) => m.kind === kind && m.metadata.name === name);
      assert.ok(index >= 0, `${kind} ${name} is there to remove`);
      all.splice(index, 1);
    };
    const { Deployment } = await import('kubernetes-models/apps/v1/Deployment');
    const invalid = deployment(manifests(), 'gateway');
    invalid.spec.replicas = 'two';
    assert.throws(() => new Deployment(invalid as never).validate());
    // The operators' CRDs too: a KafkaTopic's partitions are a number, a ScaledObject names its target.
    const topic = manifests().find((m) => m.kind === 'KafkaTopic')!;
    topic.spec.partitions = 'six';
    const scaler = manifests().find((m) => m.kind === 'ScaledObject')!;
    delete scaler.spec.scaleTargetRef;
    for (const broken of [topic, scaler]) {
      const module = await import(modelOf(broken));
      assert.throws(() => new module[broken.kind](broken).validate(), `${broken.kind} ${broken.metadata.name} should not validate`);
    }

    const broken: [keyof typeof POLICIES, (all: Manifest[]) => void, RegExp][] = [
      ['deployments', (all) => delete podSpecOf(deployment(all, 'order-api')).containers[0].readinessProbe, /order-api\/api: no readiness probe/],
      [
        'deployments',
        (all) => (podSpecOf(deployment(all, 'cart-worker')).containers[0].securityContext.readOnlyRootFilesystem = false),
        /cart-worker\/worker: the root filesystem is writable/,
      ],
      ['deployments', (all) => remove(all, 'PodDisruptionBudget', 'gateway'), /gateway: no PodDisruptionBudget/],
      ['deployments', (all) => delete podSpecOf(deployment(all, 'gateway')).containers[0].lifecycle, /gateway: behind a Service without a preStop pause/],
      [
        'deployments',
        (all) => (podSpecOf(deployment(all, 'order-api')).terminationGracePeriodSeconds = 20),
        /order-api: termination grace of 20 s is not longer/,
      ],
      ['network policies', (all) => remove(all, 'NetworkPolicy', 'payment-api'), /payment: no NetworkPolicy/],
      [
        'secrets',
        (all) => all.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'leak' }, stringData: { 'jwt-secret': 'x' } }),
        /Secret leak carries values/,
      ],
      [
        'secrets',
        (all) => podSpecOf(deployment(all, 'gateway')).containers[0].env.push({ name: 'JWT_SECRET', value: 'x' }),
        /gateway: JWT_SECRET is written in/,
      ],
      [
        'images',
        (all) => (podSpecOf(deployment(all, 'product-api')).containers[0].image = 'ghcr.io/swiftcart/swiftcart:latest'),
        /product-api: image .* is not pinned/,
      ],
      ['rollout', (all) => remove(all, 'Job', 'analytics-migrate'), /analytics: no migration Job/],
      ['engines', (all) => remove(all, 'ScaledObject', 'order-worker'), /order-worker: no ScaledObject/],
      ['engines', (all) => (all.find((m) => m.kind === 'KafkaTopic')!.spec.replicas = 1), /not 3 copies with 2 in sync/],
      [
        'engines',
        (all) => ((all.find((m) => m.kind === 'ConfigMap' && m.metadata.name === CONFIG_MAP)!.data as Record<string, string>).KAFKA_PARTITIONS = '12'),
        /says partitions\/copies\/in-sync 12\/3\/2, the topic has 6\/3\/2/,
      ],
      [
        'engines',
        (all) =>
          all
            .find((m) => m.kind === 'NetworkPolicy' && m.metadata.name === 'cart-db')!
            .spec.ingress[0].from.push({ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'order-api' } } }),
        /cart-db: not reserved/,
      ],
      ['observability', (all) => delete deployment(all, 'gateway').spec.template.metadata.annotations, /gateway: no scrape annotations/],
      ['observability', (all) => remove(all, 'PodMonitor', 'swiftcart'), /no PodMonitor selects it/],
    ];
    for (const [name, breakIt, expected] of broken) {
      const all = manifests();
      breakIt(all);
      const violations = POLICIES[name](all);
      assert.ok(
        violations.some((violation) => expected.test(violation)),
        `${name}: ${expected} not in ${JSON.stringify(violations)}`,
      );
    }
  });
});
