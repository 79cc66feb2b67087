/**
 * The gateway process: `node gateway/src/main.ts`. Reads the environment (GATEWAY_PORT,
 * SUPERGRAPH_PATH, PRODUCT_URL..., JWT_SECRET, LIVE_*, PUBLIC_GATEWAY_URL, ALLOWED_ORIGINS, TRUSTED_PROXIES,
 * RATE_LIMIT_*, MAX_SUBSCRIPTIONS_PER_SOCKET, MAX_SOCKETS_PER_CLIENT, EDGE_LIMITS), serves until SIGTERM
 * or SIGINT, then drains and exits 0; SIGHUP reloads the supergraph. A start-up failure (bad configuration, unreadable supergraph, port in use) exits 1.
 */
import { shutdownTracing, startTracing } from '@swiftcart/platform/tracing';

// First: an instrumentation patches only what is imported after it starts.
startTracing('gateway');
const [{ ConfigError, loadConfig }, { createLogger }, { SupergraphError, startGateway }] = await Promise.all([
  import('@swiftcart/platform/config'),
  import('@swiftcart/platform/logger'),
  import('./gateway.ts'),
]);
type Config = import('@swiftcart/platform/config').Config;
type Logger = import('@swiftcart/platform/logger').Logger;
type RunningGateway = import('./gateway.ts').RunningGateway;

let log: Logger = createLogger('gateway', 'info');
let config: Config;
let gateway: RunningGateway;
try {
  config = loadConfig();
  log = createLogger('gateway', config.logLevel);
  gateway = await startGateway({ config, log, buildExplorer: true });
} catch (error) {
  // A known misconfiguration is a message for a person; anything else keeps its stack.
  const known = error instanceof SupergraphError || error instanceof ConfigError;
  log.fatal(known ? {} : { err: error }, `gateway failed to start: ${(error as Error).message}`);
  process.exit(1);
}

if (gateway.sandboxUrl) {
  log.info(
    { url: gateway.url, sandbox: gateway.sandboxUrl, explorer: gateway.explorerUrl },
    `Apollo Sandbox: open ${gateway.sandboxUrl} in a browser (offline: GraphiQL at ${gateway.explorerUrl})`,
  );
} else {
  log.info({ url: gateway.url }, `GraphQL endpoint: ${gateway.url}`);
}

let stopping = false;
async function stop(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    log.error('shutdown took longer than 15 s; exiting');
    process.exit(1);
  }, 15_000);
  force.unref();
  try {
    await gateway.close();
  } catch (error) {
    log.error({ err: error }, 'shutdown failed');
    process.exit(1);
  }
  await shutdownTracing();
  process.exit(0);
}
// SIGHUP re-reads SUPERGRAPH_PATH: a new schema without dropping HTTP clients (live ones resubscribe).
process.on('SIGHUP', () => {
  gateway.reloadSupergraph().then(
    (changed) => {
      if (!changed) log.info('SIGHUP: the supergraph is unchanged');
    },
    (error: Error) => log.error({ err: error.message }, 'SIGHUP: the supergraph could not be reloaded; the old one stays'),
  );
});
process.on('SIGTERM', (signal) => void stop(signal));
process.on('SIGINT', (signal) => void stop(signal));
