/**
 * Tracing for one process: the OpenTelemetry SDK, its exporter (Zipkin or OTLP), its sampler and
 * the instrumentations of HTTP, PostgreSQL, ioredis and GraphQL. A process starts it first, before
 * it imports anything that it instruments (`main.ts` imports the rest dynamically afterwards), since
 * an instrumentation can only patch a module that is loaded after it. Settings: the OpenTelemetry
 * variables ({@link loadTracingConfig}); see docs/operations.md, "Traces".
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { register as registerImportHooks } from 'import-in-the-middle/register-hooks.mjs';
import { type TracingConfig, ConfigError, loadTracingConfig } from './config.ts';
// Nothing that it instruments: only cockatiel, which no instrumentation patches.
import { waitAtMost } from './resilience.ts';

export { type TracingConfig, loadTracingConfig } from './config.ts';

/** Paths no one wants a trace of: probes and scrapes, many times a minute. */
const UNTRACED_PATHS = /^\/(health|ready|live|metrics)\b/;

/** How long a stopping process waits for its last spans to be sent. */
const SHUTDOWN_FLUSH_MS = 2_000;

/** The modules whose ES-module imports are hooked, so that their instrumentations see them. */
const HOOKED_MODULES = ['pg', 'ioredis', 'graphql', 'http', 'https', 'node:http', 'node:https'];

/** A running tracer provider; {@link Tracing.shutdown} sends what is buffered. */
export interface Tracing {
  readonly config: TracingConfig;
  /** Sends the spans not yet exported and stops; call it before the process exits. */
  shutdown(): Promise<void>;
}

let running: Tracing | undefined;

function samplerOf(config: TracingConfig): Sampler {
  const root = config.sampler.endsWith('always_off')
    ? new AlwaysOffSampler()
    : config.sampler.endsWith('traceidratio')
      ? new TraceIdRatioBasedSampler(config.samplerRatio)
      : new AlwaysOnSampler();
  return config.sampler.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
}

function exporterOf(config: TracingConfig, service: string): SpanExporter | undefined {
  if (config.exporter === 'zipkin') return new ZipkinExporter({ url: config.zipkinUrl, serviceName: service });
  if (config.exporter === 'otlp') return new OTLPTraceExporter({ url: config.otlpUrl });
  return undefined;
}

/**
 * Starts tracing for the process named `service` (a no-op when the exporter is `none`, and after the
 * first call). A bad setting exits the process with a message, as any other start-up error does.
 */
export function startTracing(service: string, env: NodeJS.ProcessEnv = process.env): Tracing {
  if (running) return running;
  let config: TracingConfig;
  try {
    config = loadTracingConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${service} failed to start: ${error.message}\n`);
    process.exit(1);
  }
  const exporter = exporterOf(config, service);
  if (!exporter) {
    running = { config, shutdown: async () => {} };
    return running;
  }
  registerImportHooks({ include: HOOKED_MODULES });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.namespace': 'swiftcart' }),
    sampler: samplerOf(config),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: config.exportDelayMs })],
  });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.test(request.url ?? ''),
        // Kafka, Redis and PostgreSQL have their own spans; an outgoing request with no parent is a probe or a scrape.
        requireParentforOutgoingSpans: true,
      }),
      // Without a parent, a query is the relay's polling or a scrape: noise, thousands a minute.
      new PgInstrumentation({ requireParentSpan: true }),
      new IORedisInstrumentation({ requireParentSpan: true }),
      new GraphQLInstrumentation({ ignoreTrivialResolveSpans: true, ignoreResolveSpans: true, mergeItems: true }),
    ],
  });
  running = {
    config,
    async shutdown() {
      // Spans are worth a moment, never a hung exit: a trace backend that is gone (Zipkin stopped
      // first) would hold the export for its whole timeout.
      await waitAtMost(provider.shutdown(), SHUTDOWN_FLUSH_MS);
    },
  };
  return running;
}

/** Sends the spans not yet exported, when tracing runs; what a process calls on its way out. */
export async function shutdownTracing(): Promise<void> {
  await running?.shutdown();
}
