/**
 * What trusted documents save per request (issue 18), for every operation of
 * schema/trusted-documents.json, in this process:
 * - bytes on the wire: the request body the SDK sends by id against the one with the document
 *   (same operation name, no variables: the variables are the same either way);
 * - parse and validate: graphql-js parsing the document and validating it against the API schema
 *   with the standard rules, which a gateway does for every document it has not seen (Apollo keeps
 *   the ones it has seen in its document store, so a repeated document costs this once);
 * - the gateway's check: SHA-256 of a document and a lookup, which enforcement adds to a request
 *   sent as text (one sent by id costs a lookup).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { buildSchema, parse, validate } from 'graphql';
import { API_SCHEMA_FILE } from '../scripts/api-schema.ts';
import { trustedDocuments } from '../scripts/trusted-documents.ts';
import { UsageError, distribution, fixed, forEachFlag, positiveNumber, table, writeResults } from './lib.ts';

export const USAGE = `usage: npm run bench -- trusted-documents [--iterations 2000]

  --iterations  parses and validations timed per operation (default 2000), after as many unmeasured

Needs nothing running: it measures the documents and this process's graphql-js.`;

/** Times `run` `iterations` times after as many warm-up runs; microseconds per run, p50 and p99. */
function time(iterations: number, run: () => void): { p50: number; p99: number; mean: number } {
  for (let i = 0; i < iterations; i++) run();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    run();
    samples[i] = (performance.now() - start) * 1_000;
  }
  const { p50, p99, mean } = distribution(samples);
  return { p50, p99, mean };
}

export async function main(args: readonly string[]): Promise<number> {
  let iterations = 2_000;
  forEachFlag(args, (name, value) => {
    if (name === 'iterations') iterations = positiveNumber('--iterations', value(), { integer: true, max: 1_000_000 });
    else throw new UsageError(`unknown option --${name}`);
  });
  const schema = buildSchema(readFileSync(API_SCHEMA_FILE, 'utf8'));
  const { operations } = trustedDocuments();
  const ids = new Set(operations.map((o) => o.id));
  const rows = operations.map((operation) => {
    const asText = JSON.stringify({ query: operation.body, variables: {}, operationName: operation.name });
    const byId = JSON.stringify({ variables: {}, operationName: operation.name, extensions: { persistedQuery: { version: 1, sha256Hash: operation.id } } });
    const parseAndValidate = time(iterations, () => {
      const errors = validate(schema, parse(operation.body));
      if (errors.length) throw new Error(`${operation.name}: ${errors[0].message}`);
    });
    const check = time(iterations, () => {
      if (!ids.has(createHash('sha256').update(operation.body).digest('hex'))) throw new Error('not listed');
    });
    return { name: operation.name, type: operation.type, textBytes: Buffer.byteLength(asText), idBytes: Buffer.byteLength(byId), parseAndValidate, check };
  });
  const total = (pick: (row: (typeof rows)[number]) => number) => rows.reduce((sum, row) => sum + pick(row), 0);
  const summary = {
    operations: rows.length,
    meanTextBytes: total((r) => r.textBytes) / rows.length,
    meanIdBytes: total((r) => r.idBytes) / rows.length,
    meanParseAndValidateUs: total((r) => r.parseAndValidate.mean) / rows.length,
    meanCheckUs: total((r) => r.check.mean) / rows.length,
  };
  console.log(
    table([
      ['operation', 'type', 'bytes as text', 'bytes by id', 'saved', 'parse+validate µs (p50 / p99)', 'check µs (p50)'],
      ...rows.map((r) => [
        r.name,
        r.type,
        String(r.textBytes),
        String(r.idBytes),
        `${fixed((1 - r.idBytes / r.textBytes) * 100, 0)} %`,
        `${fixed(r.parseAndValidate.p50)} / ${fixed(r.parseAndValidate.p99)}`,
        fixed(r.check.p50, 2),
      ]),
    ]),
  );
  console.log(
    `\n${summary.operations} operations: ${fixed(summary.meanTextBytes, 0)} bytes as text, ${fixed(summary.meanIdBytes, 0)} by id on average; ` +
      `parse+validate ${fixed(summary.meanParseAndValidateUs)} µs per new document; the check ${fixed(summary.meanCheckUs, 2)} µs`,
  );
  const memory = process.memoryUsage();
  const { file } = await writeResults('trusted-documents', { iterations, summary, rows, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed });
  console.log(`wrote ${file}`);
  return 0;
}
