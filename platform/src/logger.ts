import { pino, type DestinationStream, type Logger } from 'pino';
import { trace } from '@opentelemetry/api';

export type { Logger } from 'pino';

/**
 * Creates the JSON logger of one process. Every line names the service, and carries the active
 * trace and span ids (`trace_id`, `span_id`) when OpenTelemetry has a sampled span, so a log line can be found from a trace.
 * Lines go to standard output unless `destination` is given (tests read what was logged).
 */
export function createLogger(service: string, level: string, destination?: DestinationStream): Logger {
  // An undefined destination is pino's default (standard output).
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const { traceId, spanId, traceFlags } = span.spanContext();
        // Only a sampled trace can be found in the backend; an unsampled id would lead nowhere.
        return traceFlags & 1 ? { trace_id: traceId, span_id: spanId } : {};
      },
    },
    destination,
  );
}
