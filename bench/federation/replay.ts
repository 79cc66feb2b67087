/**
 * The replay server of `npm run bench -- gateway`: what the gateways under test call instead of
 * subgraphs, so that a round measures the gateway and not the subgraphs behind it.
 *
 * One HTTP server, one path per subgraph (`/accounts`, `/product`, ...). A POST body seen before is
 * answered with the bytes recorded for it: one Map lookup, no GraphQL parsing or execution. A body
 * not seen before is forwarded once to the real implementation and its 200 answer recorded, so the
 * first answer to every distinct subgraph request comes from real code and every later one is the
 * same bytes. The bench records during its unmeasured warm-up and reads, per measured round, how
 * many requests each subgraph received and how many were misses (not answered from a recording).
 *
 * Entity fetches are also recorded entity by entity: a gateway that merges the `_entities` fetches
 * of concurrent requests (ours, gateway/src/entity-batcher.ts) sends bodies whose mix of
 * representations depends on timing, so they are answered by joining the recorded entities of the
 * same subgraph operation, a JSON parse of the body and a lookup per representation.
 *
 * The real implementations run in this process:
 * - `federation`: the public benchmark's four subgraphs (./subgraphs.ts), each an ApolloServer.
 * - `products`: SwiftCart's product and inventory services (platform `startService`, messaging off),
 *   over their own databases `<DB_PREFIX>_{product,inventory}` seeded with SKU-0001.. and stock;
 *   they need PostgreSQL and Redis as configured in the environment. Databases and Redis keys are
 *   removed again on exit.
 *
 * Started by bench/federation/bench.ts through {@link ReplayServer.start}; not run directly.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { gatewayCredentialHeaders } from '../../platform/src/gateway-credential.ts';

/** Which real implementations sit behind the replay. */
export type ReplayKind = 'federation' | 'products';

/** Requests per subgraph and misses since the last reset. */
export interface ReplayCounters {
  /** Subgraph name → requests received. */
  readonly requests: Readonly<Record<string, number>>;
  /** Requests not answered from a finished recording (forwarded, or waiting on a forward). */
  readonly misses: number;
  /** Distinct (subgraph, body) pairs recorded so far. */
  readonly recorded: number;
  /** Their response bytes. */
  readonly recordedBytes: number;
}

type ReplayRequest = { readonly type: 'counters'; readonly reset: boolean } | { readonly type: 'exit' };
type ReplayReply =
  | { readonly type: 'ready'; readonly urls: Readonly<Record<string, string>> }
  | ({ readonly type: 'counters' } & ReplayCounters)
  | { readonly type: 'failed'; readonly error: string };

/** The replay process, as the bench sees it. */
export class ReplayServer {
  readonly #child: ChildProcess;
  /** Subgraph name → the replay URL to route it to. */
  readonly urls: Readonly<Record<string, string>>;

  private constructor(child: ChildProcess, urls: Readonly<Record<string, string>>) {
    this.#child = child;
    this.urls = urls;
  }

  /** The replay process's id (for its CPU time). */
  get pid(): number {
    return this.#child.pid!;
  }

  /** Starts the replay process with `kind`'s real implementations; `env` reaches them (database prefix, ...). */
  static async start(kind: ReplayKind, env: NodeJS.ProcessEnv = process.env): Promise<ReplayServer> {
    const child = fork(fileURLToPath(import.meta.url), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...env, BENCH_REPLAY_KIND: kind },
    });
    const urls = await new Promise<Readonly<Record<string, string>>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the replay server did not start within 120 s')), 120_000);
      child.once('message', (m: ReplayReply) => {
        clearTimeout(timer);
        if (m.type === 'ready') resolve(m.urls);
        else reject(new Error(`the replay server failed to start: ${m.type === 'failed' ? m.error : m.type}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the replay server exited during start-up (${code})`));
      });
    });
    return new ReplayServer(child, urls);
  }

  /** The counters since the last reset; `reset` starts them again from zero. */
  counters(reset = false): Promise<ReplayCounters> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the replay server did not report its counters')), 10_000);
      const onMessage = (m: ReplayReply) => {
        if (m.type !== 'counters') return;
        clearTimeout(timer);
        this.#child.off('message', onMessage);
        const { type: _type, ...counters } = m;
        resolve(counters);
      };
      this.#child.on('message', onMessage);
      this.#child.send({ type: 'counters', reset } satisfies ReplayRequest);
    });
  }

  /** Stops the real implementations (dropping the products databases) and the process; SIGKILL after 30 s. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.send({ type: 'exit' } satisfies ReplayRequest);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// The replay process

interface Recording {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

/** The real implementations: subgraph name → URL, and how to stop them. */
interface RealSubgraphs {
  readonly urls: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

async function startFederationSubgraphs(): Promise<RealSubgraphs> {
  const [{ ApolloServer }, { startStandaloneServer }, { ApolloServerPluginInlineTraceDisabled }, { buildSubgraphSchema }, { FEDERATION_SUBGRAPHS }] =
    await Promise.all([
      import('@apollo/server'),
      import('@apollo/server/standalone'),
      import('@apollo/server/plugin/disabled'),
      import('@apollo/subgraph'),
      import('./subgraphs.ts'),
    ]);
  const servers: InstanceType<typeof ApolloServer>[] = [];
  const urls: Record<string, string> = {};
  for (const subgraph of FEDERATION_SUBGRAPHS) {
    const server = new ApolloServer({
      schema: buildSubgraphSchema([{ typeDefs: subgraph.typeDefs, resolvers: subgraph.resolvers }]),
      // No gateway here asks for federated traces (ftv1); the reference subgraphs have none.
      plugins: [ApolloServerPluginInlineTraceDisabled()],
    });
    const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } });
    servers.push(server);
    urls[subgraph.name] = url;
  }
  return { urls, close: async () => void (await Promise.all(servers.map((s) => s.stop()))) };
}

/** How many products (with stock) the products workload's catalogue has; the query reads 20. */
const PRODUCTS_SEEDED = 50;

async function startProductSubgraphs(): Promise<RealSubgraphs> {
  const [platform, { ensureDatabases, dropDatabases }, { loadServiceModule }, { seedCatalogue }, { seedProducts }, { seedStock }, { Redis }] =
    await Promise.all([
      import('@swiftcart/platform'),
      import('../../scripts/infra.ts'),
      import('../../scripts/services.ts'),
      import('../../scripts/seed.ts'),
      import('../../subgraphs/product/src/catalogue.ts'),
      import('../../subgraphs/inventory/src/stock.ts'),
      import('ioredis'),
    ]);
  const config = platform.loadConfig(process.env);
  const names = ['product', 'inventory'] as const;
  await ensureDatabases(config, names);
  const running: Awaited<ReturnType<typeof platform.startService>>[] = [];
  const close = async () => {
    await Promise.all(running.map((s) => s.close()));
    await dropDatabases(config, names).catch((error) => console.error(`bench gateway: could not drop the bench databases: ${(error as Error).message}`));
    const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.redisPrefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
    } catch (error) {
      console.error(`bench gateway: could not clear the Redis prefix ${config.redisPrefix}: ${(error as Error).message}`);
    } finally {
      redis.disconnect();
    }
  };
  try {
    for (const name of names) running.push(await platform.startService(await loadServiceModule(name), { config, port: 0, messaging: false }));
    const { products, stock } = seedCatalogue(PRODUCTS_SEEDED);
    await seedProducts(running[0].runtime.db.fork(), products);
    await seedStock(running[1].runtime.db.fork(), stock);
  } catch (error) {
    await close();
    throw error;
  }
  return { urls: { product: running[0].url, inventory: running[1].url }, close };
}

async function serveReplay(): Promise<void> {
  const kind = process.env.BENCH_REPLAY_KIND as ReplayKind;
  const real = kind === 'products' ? await startProductSubgraphs() : await startFederationSubgraphs();
  // Our subgraphs require the gateway credential; the replay is the gateway's side of them.
  const forwardHeaders = gatewayCredentialHeaders(process.env.SUBGRAPH_SECRET || null);

  const recordings = new Map<string, Recording | Promise<Recording>>();
  /** `_entities` answers, one per (subgraph, operation, other variables, representation): JSON text. */
  const entities = new Map<string, string>();
  const entityKey = (name: string, query: string, others: Record<string, unknown>, representation: unknown) =>
    `${name}\n${query}\n${JSON.stringify(others)}\n${JSON.stringify(representation)}`;
  /** The body as an entity fetch: its query, its other variables and its representations; null for any other body. */
  const entityFetchOf = (body: string) => {
    const parsed = JSON.parse(body) as { query?: string; variables?: { representations?: unknown } };
    const { representations, ...others } = parsed.variables ?? {};
    return typeof parsed.query === 'string' && Array.isArray(representations) ? { query: parsed.query, others, representations } : null;
  };
  const recordEntities = (name: string, body: string, recording: Recording) => {
    const fetch = entityFetchOf(body);
    if (!fetch) return;
    const answer = JSON.parse(recording.body.toString('utf8')) as { data?: { _entities?: unknown[] }; errors?: unknown };
    const answered = answer.data?._entities;
    if (answer.errors !== undefined || !Array.isArray(answered) || answered.length !== fetch.representations.length) return;
    fetch.representations.forEach((representation, i) => entities.set(entityKey(name, fetch.query, fetch.others, representation), JSON.stringify(answered[i])));
  };
  /** A merged entity fetch answered from the entities recorded one by one; null unless every one is there. */
  const joinEntities = (name: string, body: string): Recording | null => {
    const fetch = entityFetchOf(body);
    if (!fetch) return null;
    const parts: string[] = [];
    for (const representation of fetch.representations) {
      const part = entities.get(entityKey(name, fetch.query, fetch.others, representation));
      if (part === undefined) return null;
      parts.push(part);
    }
    return { status: 200, contentType: 'application/json', body: Buffer.from(`{"data":{"_entities":[${parts.join(',')}]}}`) };
  };
  let recordedBytes = 0;
  let requests: Record<string, number> = Object.fromEntries(Object.keys(real.urls).map((name) => [name, 0]));
  let misses = 0;

  const forward = async (url: string, body: string, accept: string | undefined): Promise<Recording> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: accept ?? 'application/json', ...forwardHeaders },
      body,
    });
    return {
      status: response.status,
      contentType: response.headers.get('content-type') ?? 'application/json',
      body: Buffer.from(await response.arrayBuffer()),
    };
  };
  const send = (res: http.ServerResponse, recording: Recording) => {
    res.writeHead(recording.status, { 'content-type': recording.contentType, 'content-length': recording.body.byteLength });
    res.end(recording.body);
  };

  const server = http.createServer((req, res) => {
    const name = (req.url ?? '/').slice(1);
    const target = real.urls[name];
    if (req.method !== 'POST' || target === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no subgraph at ${req.url}`);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8');
      requests[name] += 1;
      const key = `${name}\n${body}`;
      const recorded = recordings.get(key);
      if (recorded !== undefined && !(recorded instanceof Promise)) {
        send(res, recorded);
        return;
      }
      const joined = recorded === undefined ? joinEntities(name, body) : null;
      if (joined) {
        send(res, joined);
        return;
      }
      misses += 1;
      let pending = recorded;
      if (pending === undefined) {
        // Identical bodies arriving while the first is forwarded wait for its answer: one forward each.
        pending = forward(target, body, req.headers.accept).then(
          (recording) => {
            if (recording.status === 200) {
              recordings.set(key, recording);
              recordedBytes += recording.body.byteLength;
              recordEntities(name, body, recording);
            } else {
              recordings.delete(key);
            }
            return recording;
          },
          (error: Error) => {
            recordings.delete(key);
            throw error;
          },
        );
        recordings.set(key, pending);
      }
      pending.then(
        (recording) => send(res, recording),
        (error: Error) => res.writeHead(502, { 'content-type': 'text/plain' }).end(`replay: the real ${name} subgraph failed: ${error.message}`),
      );
    });
  });
  // The gateways keep their sockets between rounds, idle while another gateway is measured:
  // closing them after Node's default 5 s would race the gateways' reuse of them.
  server.keepAliveTimeout = 600_000;
  server.headersTimeout = 601_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      server.closeAllConnections();
      server.close();
      await real.close().catch((error) => console.error(`bench gateway: stopping the real subgraphs failed: ${(error as Error).message}`));
      process.exit(0);
    })());
  process.on('message', (message: ReplayRequest) => {
    if (message.type === 'exit') {
      void stop();
      return;
    }
    const reply: ReplayReply = { type: 'counters', requests: { ...requests }, misses, recorded: recordings.size, recordedBytes };
    if (message.reset) {
      requests = Object.fromEntries(Object.keys(requests).map((n) => [n, 0]));
      misses = 0;
    }
    process.send!(reply);
  });
  process.on('disconnect', () => void stop());
  process.send!({
    type: 'ready',
    urls: Object.fromEntries(Object.keys(real.urls).map((name) => [name, `http://127.0.0.1:${port}/${name}`])),
  } satisfies ReplayReply);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.send) {
    console.error('bench/federation/replay.ts is started by the gateway bench (it reports over IPC)');
    process.exit(2);
  }
  serveReplay().catch((error: Error) => {
    process.send!({ type: 'failed', error: error.stack ?? error.message } satisfies ReplayReply);
    process.exit(1);
  });
}
