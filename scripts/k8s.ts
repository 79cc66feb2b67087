/**
 * Generates the Kustomize base of SwiftCart's Kubernetes manifests, `deploy/k8s/base/workloads.yaml`,
 * from the platform's own facts (the services, their ports, their roles), so that a new service or
 * a moved port cannot be forgotten in the cluster: `npm run k8s:base` (or `-- --check`, which exits 1
 * when the checked-in file is stale). The overlays (`deploy/k8s/overlays/{dev,prod}`) and the
 * engines (Kafka, PostgreSQL, Redis) are written by hand. docs/deploy.md explains the whole.
 */
import path from 'node:path';
import { stringify } from 'yaml';
import { DEFAULT_SERVICE_PORTS, REPO_ROOT, SERVICE_NAMES, type ServiceName, isMain } from '../platform/src/config.ts';
import { PATHS } from '../platform/src/http.ts';
import { writeOrCheck } from './generated-file.ts';

/** Where the generated base lives. */
export const BASE_FILE = path.join(REPO_ROOT, 'deploy', 'k8s', 'base', 'workloads.yaml');

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

function secretEnv(name: string, key: string, secret = SECRET) {
  return { name, valueFrom: { secretKeyRef: { name: secret, key } } };
}

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
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, labels: labels(name, component) },
    spec: { podSelector: { matchLabels: labels(name, component) }, policyTypes: ['Ingress'], ingress: [{ from, ports: [{ protocol: 'TCP', port }] }] },
  };
}

const MONITORING = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } };

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
      secretEnv('JWT_SECRET', 'jwt-secret'),
      secretEnv('SUBGRAPH_SECRET', 'subgraph-secret'),
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
    );
  }
  const gateway: ProcessSpec = {
    name: 'gateway',
    component: 'gateway',
    command: ['node', 'gateway/src/main.ts'],
    port: GATEWAY_PORT,
    env: [
      { name: 'GATEWAY_PORT', value: String(GATEWAY_PORT) },
      { name: 'OTEL_SERVICE_NAME', value: 'gateway' },
      secretEnv('JWT_SECRET', 'jwt-secret'),
      secretEnv('SUBGRAPH_SECRET', 'subgraph-secret'),
      ...urlEnv(SERVICE_NAMES),
    ],
    replicas: 2,
    cpu: '500m',
    memory: '768Mi',
  };
  manifests.push(deployment(gateway), service('gateway', gateway), podDisruptionBudget(gateway), cpuAutoscaler(gateway, 20));
  return manifests;
}

/** The text of {@link BASE_FILE}. */
export function renderBase(): string {
  const header = "# Generated by `npm run k8s:base` (scripts/k8s.ts) from the platform's services and ports: do not edit.\n";
  return (
    header +
    baseManifests()
      .map((manifest) => `---\n${stringify(manifest, { lineWidth: 0 })}`)
      .join('')
  );
}

if (isMain(import.meta.url)) await writeOrCheck(BASE_FILE, renderBase, 'npm run k8s:base');
