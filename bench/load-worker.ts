/**
 * The load generator process started by bench/lib.ts `LoadGenerator`: closed-loop virtual users
 * over node:http keep-alive sockets (one pool per target, `concurrency` sockets), timing each
 * request and checking each response. A target with `bodies` has each request take the next one,
 * so that requests in flight together differ. Not run directly.
 */
import http from 'node:http';
import { post, type LoadRun, type LoadTarget, type WorkerReply, type WorkerRequest } from './lib.ts';

if (!process.send) {
  console.error('bench/load-worker.ts is started by bench/lib.ts, not directly');
  process.exit(2);
}

/** Why a response does not count as a success, or null when it does. */
function check(target: LoadTarget, status: number, text: string): string | null {
  if (status !== 200) return `HTTP ${status}: ${text.slice(0, 160)}`;
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    return `not JSON: ${text.slice(0, 160)}`;
  }
  if (json.errors?.length) return `GraphQL errors: ${JSON.stringify(json.errors).slice(0, 200)}`;
  if (target.expect) {
    let value = json;
    for (const key of target.expect.path) value = value?.[key];
    if (target.expect.length !== undefined) {
      if (!Array.isArray(value)) return `${target.expect.path.join('.')} is not a list`;
      if (value.length !== target.expect.length) return `${target.expect.path.join('.')} has ${value.length} items, expected ${target.expect.length}`;
    } else if (value === undefined || value === null) {
      return `${target.expect.path.join('.')} is missing`;
    }
  }
  return null;
}

const agents = new Map<string, http.Agent>();
/** Where each cycling target's next run starts, so consecutive runs keep walking the cycle. */
const cursors = new Map<string, number>();

async function run(request: Extract<WorkerRequest, { type: 'run' }>): Promise<LoadRun> {
  const { target, concurrency, durationMs, record } = request;
  let agent = agents.get(target.url);
  if (!agent || agent.maxSockets < concurrency) {
    agent?.destroy();
    agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
    agents.set(target.url, agent);
  }
  const url = new URL(target.url);
  // Encoded once: the load generator shares a core with the replay server.
  const bodies = (target.bodies ?? [target.body]).map((b) => Buffer.from(JSON.stringify(b)));
  const baseHeaders = { 'content-type': 'application/json', accept: 'application/json', ...target.headers };
  const cursorKey = `${target.url}\n${bodies.length}`;
  let next = cursors.get(cursorKey) ?? 0;
  let latencies = new Float64Array(record ? 65_536 : 0);
  let requests = 0;
  let errors = 0;
  const samples = new Set<string>();
  const started = performance.now();
  const deadline = started + durationMs;

  const user = async () => {
    while (performance.now() < deadline) {
      const body = bodies[next];
      next = (next + 1) % bodies.length;
      const t0 = performance.now();
      let problem: string | null;
      try {
        const { status, text } = await post(url, agent, body, { ...baseHeaders, 'content-length': body.byteLength });
        problem = check(target, status, text);
      } catch (error) {
        problem = (error as Error).message;
      }
      const elapsed = performance.now() - t0;
      if (record) {
        if (requests === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[requests] = elapsed;
      }
      requests += 1;
      if (problem !== null) {
        errors += 1;
        if (samples.size < 5) samples.add(problem);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, user));
  cursors.set(cursorKey, next);
  const elapsedMs = performance.now() - started;
  return {
    target: target.name,
    requests,
    errors,
    errorSamples: [...samples],
    elapsedMs,
    latenciesMs: record ? latencies.slice(0, requests) : new Float64Array(0),
  };
}

process.on('message', (message: WorkerRequest) => {
  if (message.type === 'exit') {
    for (const agent of agents.values()) agent.destroy();
    process.exit(0);
  }
  if (message.type === 'run') {
    run(message).then(
      (result) => process.send!({ type: 'result', id: message.id, run: result } satisfies WorkerReply),
      (error) => process.send!({ type: 'failed', id: message.id, error: (error as Error).message } satisfies WorkerReply),
    );
  }
});
// The parent going away ends the worker too.
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready' } satisfies WorkerReply);
