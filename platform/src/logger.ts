import { pino, type DestinationStream, type Logger } from 'pino';
import { trace } from '@opentelemetry/api';

export type { Logger } from 'pino';

/**
 * Creates the JSON logger of one process. Every line names the service, and carries the active
 * trace and span ids when OpenTelemetry has a span, so a log line can be found from a trace.
 * Lines go to standard output unless `destination` is given (tests read what was logged).
 */
export function createLogger(service: string, level: string, destination?: DestinationStream): Logger {
  // An undefined destination is pino's default (standard output).
  return pino({
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId } = span.spanContext();
      return { traceId, spanId };
    },
  }, destination);
}
