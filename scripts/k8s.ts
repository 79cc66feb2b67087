/**
 * Generates the Kustomize base of SwiftCart's Kubernetes manifests, `deploy/k8s/base/workloads.yaml`,
 * from the platform's own facts (the services, their ports, their roles), so that a new service or
 * a moved port cannot be forgotten in the cluster: `npm run k8s:base` (or `-- --check`, which exits 1
 * when the checked-in file is stale). The overlays (`deploy/k8s/overlays/{dev,prod}`) and the
 * engines (Kafka, PostgreSQL, Redis) are written by hand. docs/deploy.md explains the whole.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_SERVICE_PORTS, REPO_ROOT, SERVICE_NAMES, type ServiceName, isMain } from '../platform/src/config.ts';
import { PATHS } from '../platform/src/http.ts';
import { EVENT_CONTRACTS, dlqTopic, eventsTopic } from '../platform/src/events.ts';
import { SALES_CONSUMER } from '../subgraphs/analytics/src/consumer.ts';
import { CATALOGUE_CONSUMER as CART_CATALOGUE } from '../subgraphs/cart/src/service.ts';
import { ORDER_EVENTS_CONSUMER as INVENTORY_ORDER_EVENTS } from '../subgraphs/inventory/src/order-events.ts';
import { CUSTOMER_CONSUMER as NOTIFICATION_CUSTOMERS, ORDER_EVENTS_CONSUMER as NOTIFICATION_ORDER_EVENTS } from '../subgraphs/notification/src/consumers.ts';
import { CATALOGUE_CONSUMER as ORDER_CATALOGUE, CUSTOMER_CONSUMER as ORDER_CUSTOMERS, SAGA_CONSUMER as ORDER_SAGA } from '../subgraphs/order/src/consumers.ts';
import { ORDER_EVENTS_CONSUMER as PAYMENT_ORDER_EVENTS } from '../subgraphs/payment/src/order-events.ts';
import { ORDER_EVENTS_CONSUMER as SHIPMENT_ORDER_EVENTS } from '../subgraphs/shipment/src/order-events.ts';
import { writeOrCheck } from './generated-file.ts';

/** Where the generated base lives: the processes, and the engines they run on. */
export const BASE_FILE = path.join(REPO_ROOT, 'deploy', 'k8s', 'base', 'workloads.yaml');
export const ENGINES_FILE = path.join(REPO_ROOT, 'deploy', 'k8s', 'base', 'engines.yaml');
export const OBSERVABILITY_FILE = path.join(REPO_ROOT, 'deploy', 'k8s', 'base', 'observability.yaml');

/** The Grafana dashboard docker-compose provisions, shipped to the cluster's Grafana as a ConfigMap. */
export const DASHBOARD_FILE = path.join(REPO_ROOT, 'deploy', 'grafana', 'dashboards', 'swiftcart.json');

/** Strimzi's Kafka cluster; its bootstrap Service is `<name>-kafka-bootstrap`. */
export const KAFKA_CLUSTER = 'swiftcart';
const KAFKA_BOOTSTRAP = `${KAFKA_CLUSTER}-kafka-bootstrap:9092`;

/**
 * Partitions per topic (`KAFKA_PARTITIONS` in config.yaml): the most consumers of one group that
 * can work at once, so the most worker pods KEDA starts for it.
 */
export const KAFKA_PARTITIONS = 6;

/** The consumer groups each service's worker runs (the `consumer` of its ConsumerSpecs; analytics' rebuild groups come and go). */
export const CONSUMER_GROUPS: Partial<Record<ServiceName, readonly string[]>> = {
  inventory: [INVENTORY_ORDER_EVENTS],
  order: [ORDER_CATALOGUE, ORDER_SAGA, ORDER_CUSTOMERS],
  payment: [PAYMENT_ORDER_EVENTS],
  shipment: [SHIPMENT_ORDER_EVENTS],
  cart: [CART_CATALOGUE],
  notification: [NOTIFICATION_ORDER_EVENTS, NOTIFICATION_CUSTOMERS],
  analytics: [SALES_CONSUMER],
};

/** The image every process runs (Dockerfile); overlays pin its tag with `images:`. */
export const IMAGE = 'swiftcart';

/** The ConfigMap and Secret every process reads; the Secret is made outside the repository (docs/deploy.md). */
export const CONFIG_MAP = 'swiftcart-config';
export const SECRET = 'swiftcart-secrets';

const GATEWAY_PORT = 4000;

/**
 * Seconds a pod has between SIGTERM and SIGKILL: longer than the drain, in which a process stops
 * taking work, finishes what is in flight and closes live subscriptions, and which it cuts short
 * itself after 15 s (platform/src/service.ts `runService`, gateway/src/main.ts).
 */
const TERMINATION_GRACE_SECONDS = 30;

/**
 * Seconds a pod behind a Service keeps serving after it is told to stop, before SIGTERM: the time
 * for the Service's endpoints to drop it everywhere. Without it, new requests and reconnecting live
 * clients could still be sent to a process that has closed its port (docs/deploy.md, "Scaling in").
 * Uses the kubelet's own sleep (Kubernetes 1.30+), so the image needs no shell.
 */
export const ENDPOINT_REMOVAL_SECONDS = 5;

type Manifest = Record<string, unknown>;

function labels(name: string, component: string): Record<string, string> {
  return { 'app.kubernetes.io/name': name, 'app.kubernetes.io/component': component, 'app.kubernetes.io/part-of': 'swiftcart' };
}

/** Non-root, read-only root filesystem, nothing added: what every SwiftCart container runs with. */
const CONTAINER_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 1000,
  runAsGroup: 1000,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function secretEnv(name: string, key: string, secret = SECRET, optional = false) {
  return { name, valueFrom: { secretKeyRef: { name: secret, key, ...(optional ? { optional } : {}) } } };
}

/**
 * The signing secret and the gateway's credential, and the ones being retired (optional keys: set
 * only while a secret is rotated, docs/deploy.md "Rotating secrets").
 */
const SHARED_SECRETS = [
  secretEnv('JWT_SECRET', 'jwt-secret'),
  secretEnv('JWT_PREVIOUS_SECRET', 'jwt-previous-secret', SECRET, true),
  secretEnv('SUBGRAPH_SECRET', 'subgraph-secret'),
  secretEnv('SUBGRAPH_PREVIOUS_SECRET', 'subgraph-previous-secret', SECRET, true),
];

/** `DATABASE_URL`'s source: the `uri` of CloudNativePG's `<service>-db-app` Secret (docs/deploy.md). */
function databaseEnv(service: ServiceName) {
  return secretEnv('DATABASE_URL', 'uri', `${service}-db-app`);
}

interface ProcessSpec {
  readonly name: string;
  readonly component: 'api' | 'worker' | 'gateway';
  readonly command: readonly string[];
  readonly port: number;
  readonly env: readonly Manifest[];
  readonly replicas: number;
  readonly cpu: string;
  readonly memory: string;
}

function deployment(spec: ProcessSpec): Manifest {
  const selector = labels(spec.name, spec.component);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: spec.name, labels: selector },
    spec: {
      replicas: spec.replicas,
      selector: { matchLabels: selector },
      // Never below the replicas asked for while a new version rolls out.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: selector,
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(spec.port), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
          securityContext: { runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: spec.component === 'gateway' ? 'gateway' : spec.component,
              image: IMAGE,
              command: [...spec.command],
              ports: [{ name: 'http', containerPort: spec.port }],
              envFrom: [{ configMapRef: { name: CONFIG_MAP } }],
              env: [...spec.env],
              readinessProbe: { httpGet: { path: PATHS.ready, port: 'http' }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
              livenessProbe: { httpGet: { path: PATHS.health, port: 'http' }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
              startupProbe: { httpGet: { path: PATHS.health, port: 'http' }, periodSeconds: 2, failureThreshold: 60 },
              resources: { requests: { cpu: spec.cpu, memory: spec.memory }, limits: { memory: spec.memory } },
              securityContext: CONTAINER_SECURITY,
              ...(spec.component === 'worker' ? {} : { lifecycle: { preStop: { sleep: { seconds: ENDPOINT_REMOVAL_SECONDS } } } }),
              // Node and its libraries write temporary files; the root filesystem is read-only.
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  };
}

function podDisruptionBudget(spec: ProcessSpec): Manifest {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: spec.name, labels: labels(spec.name, spec.component) },
    spec: { maxUnavailable: 1, selector: { matchLabels: labels(spec.name, spec.component) } },
  };
}

function cpuAutoscaler(spec: ProcessSpec, maxReplicas: number): Manifest {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: spec.name, labels: labels(spec.name, spec.component) },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: spec.name },
      minReplicas: spec.replicas,
      maxReplicas,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    },
  };
}

/** Service `name` in front of the pods of `spec` (a service's name reaches its api pods). */
function service(name: string, spec: ProcessSpec): Manifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: labels(name, spec.component) },
    spec: { selector: labels(spec.name, spec.component), ports: [{ name: 'http', port: spec.port, targetPort: 'http' }] },
  };
}

/** Runs `npm run migrate -- <service>` once per rollout, before it (docs/deploy.md). */
function migrationJob(name: ServiceName): Manifest {
  const jobLabels = labels(`${name}-migrate`, 'migration');
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: `${name}-migrate`, labels: jobLabels },
    spec: {
      backoffLimit: 3,
      ttlSecondsAfterFinished: 86_400,
      template: {
        metadata: { labels: jobLabels },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, fsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'migrate',
              image: IMAGE,
              command: ['node', 'scripts/migrate.ts', name],
              envFrom: [{ configMapRef: { name: CONFIG_MAP } }],
              env: [databaseEnv(name)],
              resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '256Mi' } },
              securityContext: CONTAINER_SECURITY,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }],
        },
      },
    },
  };
}

/** Only `from` may reach the pods of `name` (a process of `component`), on `port`. */
function networkPolicy(name: string, component: string, from: readonly Manifest[], port: number): Manifest {
  return ingressPolicy(name, labels(name, component), labels(name, component), from, [port]);
}

/** A NetworkPolicy `name` (labelled `metadataLabels`): only `from` may reach the pods matching `podSelector`, on `ports`. */
function ingressPolicy(
  name: string,
  metadataLabels: Record<string, string>,
  podSelector: Record<string, string>,
  from: readonly Manifest[],
  ports: readonly number[],
): Manifest {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, labels: metadataLabels },
    spec: { podSelector: { matchLabels: podSelector }, policyTypes: ['Ingress'], ingress: [{ from, ports: ports.map((port) => ({ protocol: 'TCP', port })) }] },
  };
}

/** Traffic from every pod of namespace `namespace`. */
function fromNamespace(namespace: string): Manifest {
  return { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } };
}

const MONITORING = fromNamespace('monitoring');

/** Who may call a subgraph's API: the gateway, the services named, and Prometheus' namespace. */
function subgraphPolicy(name: ServiceName, port: number, callers: readonly ServiceName[]): Manifest {
  const from: Manifest[] = [
    { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'gateway' } } },
    ...callers.flatMap((caller) => ['api', 'worker'].map((role) => ({ podSelector: { matchLabels: { 'app.kubernetes.io/name': `${caller}-${role}` } } }))),
    MONITORING,
  ];
  return networkPolicy(`${name}-api`, 'api', from, port);
}

/** A worker serves only probes and metrics: the kubelet (which policies do not stop) and Prometheus. */
function workerPolicy(name: ServiceName, port: number): Manifest {
  return networkPolicy(`${name}-worker`, 'worker', [MONITORING], port);
}

/**
 * Scales a worker on its consumer groups' lag (KEDA's Kafka scaler, one trigger per group, over
 * every topic the group consumes), not on CPU: a saga backlog shows as lag long before as CPU.
 */
function lagScaler(spec: ProcessSpec, groups: readonly string[]): Manifest {
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: spec.name, labels: labels(spec.name, spec.component) },
    spec: {
      scaleTargetRef: { name: spec.name },
      minReplicaCount: spec.replicas,
      // More consumers of a group than partitions would sit idle.
      maxReplicaCount: KAFKA_PARTITIONS,
      cooldownPeriod: 120,
      triggers: groups.map((group) => ({
        type: 'kafka',
        metadata: { bootstrapServers: KAFKA_BOOTSTRAP, consumerGroup: group, lagThreshold: '200', activationLagThreshold: '0', offsetResetPolicy: 'earliest' },
      })),
    },
  };
}

/** Services that call another service's API directly (not through the gateway). */
const DIRECT_CALLERS: Partial<Record<ServiceName, readonly ServiceName[]>> = {
  // The cart checks stock and places orders itself (subgraphs/cart: INVENTORY_URL, ORDER_URL).
  inventory: ['cart'],
  order: ['cart'],
};

/** The URL variables a process needs to reach other services' APIs. */
function urlEnv(names: readonly ServiceName[]): Manifest[] {
  return names.map((name) => ({ name: `${name.toUpperCase()}_URL`, value: `http://${name}:${DEFAULT_SERVICE_PORTS[name]}${PATHS.graphql}` }));
}

/** Every object of the base, in a stable order. */
export function baseManifests(): Manifest[] {
  const manifests: Manifest[] = [];
  for (const name of SERVICE_NAMES) {
    const port = DEFAULT_SERVICE_PORTS[name];
    const calls = (Object.entries(DIRECT_CALLERS) as [ServiceName, readonly ServiceName[]][])
      .filter(([, callers]) => callers.includes(name))
      .map(([callee]) => callee);
    const common = [
      { name: `${name.toUpperCase()}_PORT`, value: String(port) },
      { name: 'OTEL_SERVICE_NAME', value: name },
      databaseEnv(name),
      ...SHARED_SECRETS,
      ...urlEnv(calls),
      ...(name === 'notification' ? [secretEnv('NOTIFICATION_SMTP_URL', 'notification-smtp-url')] : []),
    ];
    const command = ['node', `subgraphs/${name}/src/main.ts`];
    // One image and command; SERVICE_ROLE decides what the process runs (ADR 0015).
    const processOf = (role: 'api' | 'worker', replicas: number): ProcessSpec => ({
      name: `${name}-${role}`,
      component: role,
      command,
      port,
      env: [...common, { name: 'SERVICE_ROLE', value: role }],
      replicas,
      cpu: '250m',
      memory: '384Mi',
    });
    const api = processOf('api', 2);
    const worker = processOf('worker', 1);
    const groups = CONSUMER_GROUPS[name];
    manifests.push(
      migrationJob(name),
      deployment(api),
      service(name, api),
      podDisruptionBudget(api),
      cpuAutoscaler(api, 10),
      subgraphPolicy(name, port, DIRECT_CALLERS[name] ?? []),
      deployment(worker),
      podDisruptionBudget(worker),
      workerPolicy(name, port),
      ...(groups ? [lagScaler(worker, groups)] : []),
    );
  }
  const gateway: ProcessSpec = {
    name: 'gateway',
    component: 'gateway',
    command: ['node', 'gateway/src/main.ts'],
    port: GATEWAY_PORT,
    env: [{ name: 'GATEWAY_PORT', value: String(GATEWAY_PORT) }, { name: 'OTEL_SERVICE_NAME', value: 'gateway' }, ...SHARED_SECRETS, ...urlEnv(SERVICE_NAMES)],
    replicas: 2,
    cpu: '500m',
    memory: '768Mi',
  };
  manifests.push(deployment(gateway), service('gateway', gateway), podDisruptionBudget(gateway), cpuAutoscaler(gateway, 20));
  return manifests;
}

/** The topics the services publish on, and their dead-letter topics: replication 3, 2 in sync for a write. */
function kafkaTopics(): Manifest[] {
  const sources = [...new Set(Object.values(EVENT_CONTRACTS).map((contract) => contract.source))].sort();
  return sources.flatMap((source) =>
    [eventsTopic(source), dlqTopic(eventsTopic(source))].map((topic) => ({
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'KafkaTopic',
      metadata: { name: topic.replaceAll('.', '-'), labels: { 'strimzi.io/cluster': KAFKA_CLUSTER, 'app.kubernetes.io/part-of': 'swiftcart' } },
      spec: { topicName: topic, partitions: KAFKA_PARTITIONS, replicas: 3, config: { 'min.insync.replicas': 2, 'retention.ms': 7 * 24 * 3_600_000 } },
    })),
  );
}

/** Kafka from the Strimzi operator: three KRaft nodes, each broker and controller. */
function kafka(): Manifest[] {
  return [
    {
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'KafkaNodePool',
      metadata: { name: 'nodes', labels: { 'strimzi.io/cluster': KAFKA_CLUSTER } },
      spec: {
        replicas: 3,
        roles: ['controller', 'broker'],
        storage: { type: 'persistent-claim', size: '20Gi', deleteClaim: false },
        resources: { requests: { cpu: '500m', memory: '2Gi' }, limits: { memory: '2Gi' } },
      },
    },
    {
      apiVersion: 'kafka.strimzi.io/v1',
      kind: 'Kafka',
      metadata: { name: KAFKA_CLUSTER },
      spec: {
        kafka: {
          listeners: [{ name: 'plain', port: 9092, type: 'internal', tls: false }],
          config: {
            'default.replication.factor': 3,
            'min.insync.replicas': 2,
            'offsets.topic.replication.factor': 3,
            'transaction.state.log.replication.factor': 3,
            'transaction.state.log.min.isr': 2,
            // Topics are KafkaTopics (above), never created by a typo.
            'auto.create.topics.enable': false,
          },
        },
        entityOperator: { topicOperator: {} },
      },
    },
  ];
}

/** PostgreSQL from CloudNativePG: one Cluster per service, its database named as the service expects. */
function postgresClusters(): Manifest[] {
  return SERVICE_NAMES.map((name) => ({
    apiVersion: 'postgresql.cnpg.io/v1',
    kind: 'Cluster',
    metadata: { name: `${name}-db`, labels: { 'app.kubernetes.io/part-of': 'swiftcart' } },
    spec: {
      instances: 3,
      // The database and owner `swiftcart_<service>` (DB_PREFIX's default); the Secret `<service>-db-app` holds its `uri`.
      bootstrap: { initdb: { database: `swiftcart_${name}`, owner: `swiftcart_${name}` } },
      storage: { size: '10Gi' },
      resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { memory: '512Mi' } },
    },
  }));
}

/** Who reaches the engines: a service's database only its own pods (and the operator); Kafka the SwiftCart pods. */
function enginePolicies(): Manifest[] {
  const policy = (name: string, podSelector: Record<string, string>, from: readonly Manifest[], ports: readonly number[]) =>
    ingressPolicy(name, { 'app.kubernetes.io/part-of': 'swiftcart' }, podSelector, from, ports);
  const own = (name: ServiceName) =>
    ['api', 'worker', 'migration'].map((component) => ({
      podSelector: { matchLabels: { 'app.kubernetes.io/name': component === 'migration' ? `${name}-migrate` : `${name}-${component}` } },
    }));
  return [
    ...SERVICE_NAMES.map((name) =>
      // The instances replicate among themselves; the operator (namespace cnpg-system) manages them.
      policy(
        `${name}-db`,
        { 'cnpg.io/cluster': `${name}-db` },
        [...own(name), { podSelector: { matchLabels: { 'cnpg.io/cluster': `${name}-db` } } }, fromNamespace('cnpg-system')],
        [5432, 8000],
      ),
    ),
    policy(
      'kafka',
      { 'strimzi.io/cluster': KAFKA_CLUSTER },
      [
        { podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'swiftcart' } } },
        { podSelector: { matchLabels: { 'strimzi.io/cluster': KAFKA_CLUSTER } } },
        fromNamespace('strimzi'),
      ],
      [9090, 9091, 9092],
    ),
  ];
}

/**
 * What the cluster's monitoring needs: a PodMonitor (Prometheus Operator) scraping `/metrics` on
 * every SwiftCart pod's `http` port (plain Prometheus reads the pods' `prometheus.io/*`
 * annotations instead), and the Grafana dashboard as a ConfigMap that Grafana's dashboard sidecar
 * picks up by its `grafana_dashboard` label.
 */
function observabilityManifests(): Manifest[] {
  return [
    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { name: 'swiftcart', labels: { 'app.kubernetes.io/part-of': 'swiftcart' } },
      spec: {
        selector: {
          matchExpressions: [{ key: 'app.kubernetes.io/component', operator: 'In', values: ['api', 'worker', 'gateway'] }],
          matchLabels: { 'app.kubernetes.io/part-of': 'swiftcart' },
        },
        podMetricsEndpoints: [{ port: 'http', path: '/metrics', interval: '15s' }],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'swiftcart-dashboard', labels: { 'app.kubernetes.io/part-of': 'swiftcart', grafana_dashboard: '1' } },
      data: { 'swiftcart.json': readFileSync(DASHBOARD_FILE, 'utf8') },
    },
  ];
}

/** The text of {@link OBSERVABILITY_FILE}. */
export function renderObservability(): string {
  return renderManifests(observabilityManifests());
}

/** The text of {@link ENGINES_FILE}. */
export function renderEngines(): string {
  return renderManifests([...kafka(), ...kafkaTopics(), ...postgresClusters(), ...enginePolicies()]);
}

function renderManifests(manifests: readonly Manifest[]): string {
  const header = "# Generated by `npm run k8s:base` (scripts/k8s.ts) from the platform's services, ports and topics: do not edit.\n";
  return header + manifests.map((manifest) => `---\n${stringify(manifest, { lineWidth: 0 })}`).join('');
}

/** The text of {@link BASE_FILE}. */
export function renderBase(): string {
  return renderManifests(baseManifests());
}

if (isMain(import.meta.url)) {
  await writeOrCheck(BASE_FILE, renderBase, 'npm run k8s:base');
  await writeOrCheck(ENGINES_FILE, renderEngines, 'npm run k8s:base');
  await writeOrCheck(OBSERVABILITY_FILE, renderObservability, 'npm run k8s:base');
}
