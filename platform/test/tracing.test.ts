/**
 * Tracing's settings (OpenTelemetry's own variables) and its traces in the logs. The trace itself,
 * read back from a real Zipkin, is test/e2e/traces.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import { ConfigError, createLogger } from '../src/index.ts';
import { loadTracingConfig, startTracing } from '../src/tracing.ts';

describe('tracing settings', () => {
  it('traces to Zipkin in development, to OTLP in production, not at all in tests', () => {
    assert.equal(loadTracingConfig({}).exporter, 'zipkin');
    assert.equal(loadTracingConfig({ NODE_ENV: 'production' }).exporter, 'otlp');
    assert.equal(loadTracingConfig({ NODE_ENV: 'test' }).exporter, 'none');
    assert.equal(loadTracingConfig({ OTEL_TRACES_EXPORTER: 'OTLP' }).exporter, 'otlp');
    assert.equal(loadTracingConfig({ OTEL_TRACES_EXPORTER: 'zipkin', OTEL_SDK_DISABLED: 'true' }).exporter, 'none');
  });

  it('samples every trace in development and a tenth in production, as told', () => {
    assert.deepEqual([loadTracingConfig({}).sampler, loadTracingConfig({}).samplerRatio], ['parentbased_always_on', 1]);
    const production = loadTracingConfig({ NODE_ENV: 'production' });
    assert.deepEqual([production.sampler, production.samplerRatio], ['parentbased_traceidratio', 0.1]);
    assert.equal(loadTracingConfig({ OTEL_TRACES_SAMPLER_ARG: '0.25' }).samplerRatio, 0.25);
    assert.equal(loadTracingConfig({ OTEL_TRACES_SAMPLER: 'always_off' }).sampler, 'always_off');
  });

  it('finds the endpoints: Zipkin on 9411, OTLP on 4318 or under OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    assert.equal(loadTracingConfig({}).zipkinUrl, 'http://127.0.0.1:9411/api/v2/spans');
    assert.equal(loadTracingConfig({}).otlpUrl, 'http://127.0.0.1:4318/v1/traces');
    assert.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318/' }).otlpUrl, 'http://jaeger:4318/v1/traces');
    assert.equal(loadTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:1', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:2/t' }).otlpUrl, 'http://b:2/t');
  });

  it('refuses what it cannot use, naming the variable', () => {
    assert.throws(
      () => loadTracingConfig({ OTEL_TRACES_EXPORTER: 'jaeger' }),
      (e: Error) => e instanceof ConfigError && /OTEL_TRACES_EXPORTER must be one of zipkin, otlp, none, got "jaeger"/.test(e.message),
    );
    assert.throws(() => loadTracingConfig({ OTEL_TRACES_SAMPLER: 'sometimes' }), /OTEL_TRACES_SAMPLER must be one of/);
    for (const bad of ['2', '-0.1', 'half', '0.5x'])
      assert.throws(() => loadTracingConfig({ OTEL_TRACES_SAMPLER_ARG: bad }), /OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1/, bad);
    assert.throws(() => loadTracingConfig({ OTEL_EXPORTER_ZIPKIN_ENDPOINT: 'localhost:9411' }), /OTEL_EXPORTER_ZIPKIN_ENDPOINT must use http: or https:/);
    assert.throws(() => loadTracingConfig({ OTEL_BSP_SCHEDULE_DELAY: '0' }), /OTEL_BSP_SCHEDULE_DELAY must be an integer/);
  });
});

describe('logs inside a span', () => {
  it('carry trace_id and span_id of a sampled span, and nothing outside one', async () => {
    // An exporter to nowhere: spans are recorded and sampled, and their sending fails quietly.
    const tracing = startTracing('tracing-test', { OTEL_TRACES_EXPORTER: 'zipkin', OTEL_EXPORTER_ZIPKIN_ENDPOINT: 'http://127.0.0.1:1/api/v2/spans' });
    const lines: Record<string, unknown>[] = [];
    const log = createLogger('tracing-test', 'info', {
      write: (line: string) => {
        lines.push(JSON.parse(line));
      },
    });
    log.info('outside');
    let ids: { traceId: string; spanId: string } | undefined;
    trace.getTracer('test').startActiveSpan('inside', (span) => {
      ids = span.spanContext();
      log.info('inside');
      span.end();
    });
    await tracing.shutdown();
    assert.equal(lines[0].trace_id, undefined);
    assert.deepEqual([lines[1].trace_id, lines[1].span_id], [ids!.traceId, ids!.spanId]);
    assert.match(String(lines[1].trace_id), /^[0-9a-f]{32}$/);
  });
});
