/**
 * The Dockerfile, checked without Docker (no engine here, and hadolint is neither in Debian's
 * packages nor on the npm registry but as a wrapper that downloads it): `dockerfilelint` (a linter
 * on the npm registry) finds nothing, and our own rules hold: one multi-stage build, pinned Node 24
 * base images, production dependencies only in the runtime image, which runs as the non-root
 * `node` user (uid 1000, what the Kubernetes manifests require: scripts/k8s.ts). The linter and
 * each rule are also run on a copy broken on purpose.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run as dockerfilelint } from 'dockerfilelint';
import { REPO_ROOT } from '../platform/src/config.ts';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped. */
function instructionsOf(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && current === '') continue;
    if (line.trimEnd().endsWith('\\')) {
      current += `${line.trimEnd().slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim()) logical.push(current.trim());
    current = '';
  }
  return logical.map((line) => {
    const [keyword, ...rest] = line.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
}

/** What breaks the rules, empty when they hold. */
function dockerfileViolations(text: string): string[] {
  const violations: string[] = [];
  const instructions = instructionsOf(text);
  const stages = instructions.flatMap((instruction, index) => (instruction.keyword === 'FROM' ? [index] : []));
  if (stages.length < 2) violations.push('not a multi-stage build');
  for (const index of stages) {
    const image = instructions[index].args.split(/\s+/)[0];
    if (!/^node:24(\.\d+)*-[a-z]+$/.test(image)) violations.push(`base image ${image} is not a pinned Node 24 image`);
  }
  const runtime = instructions.slice(stages.at(-1));
  const run = runtime.filter((i) => i.keyword === 'RUN').map((i) => i.args);
  if (!run.some((command) => /npm ci\b.*--omit=dev/.test(command)))
    violations.push('the runtime image does not install production dependencies only (npm ci --omit=dev)');
  if (run.some((command) => /npm (i|install)\b/.test(command))) violations.push('the runtime image runs npm install');
  const users = runtime.filter((i) => i.keyword === 'USER');
  if (users.at(-1)?.args !== 'node') violations.push('the runtime image does not end as the non-root user node');
  if (!runtime.some((i) => i.keyword === 'ENV' && /NODE_ENV=production/.test(i.args))) violations.push('the runtime image does not set NODE_ENV=production');
  if (instructions.some((i) => i.keyword === 'ADD' && /https?:\/\//.test(i.args))) violations.push('ADD from a URL');
  if (!runtime.some((i) => i.keyword === 'COPY' && i.args.startsWith('--from=')))
    violations.push('the runtime image builds in place instead of copying from a build stage');
  return violations;
}

describe('Dockerfile', () => {
  const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');

  it('is one multi-stage build of pinned Node 24 images, production dependencies only, running as node', () => {
    assert.deepEqual(dockerfileViolations(text), []);
  });

  it('dockerfilelint finds nothing in it, and finds the latest tag in a broken copy', () => {
    assert.deepEqual(dockerfilelint(REPO_ROOT, text), []);
    const broken = text.replace(/^FROM node:24-slim$/m, 'FROM node:latest');
    const titles = dockerfilelint(REPO_ROOT, broken).map((issue) => issue.title);
    assert.ok(titles.includes('Base Image Latest Tag'), JSON.stringify(titles));
  });

  it('each rule catches a copy broken on purpose', () => {
    const broken: [string, RegExp][] = [
      [text.replace(/^FROM node:24-slim$/m, 'FROM node:latest'), /node:latest is not a pinned Node 24 image/],
      [text.replace('npm ci --omit=dev', 'npm ci'), /production dependencies only/],
      [text.replace(/^USER node$/m, 'USER root'), /non-root user node/],
      [
        text
          .replace(/^COPY --from=storefront .*$/m, '')
          .replace(/^COPY --from=source \/manifests\/ \.\/$/gm, 'COPY . .')
          .replace(/^COPY --from=source \/src\/ \.\/$/gm, ''),
        /copying from a build stage/,
      ],
    ];
    for (const [copy, expected] of broken) {
      assert.notEqual(copy, text, `the break for ${expected} changed nothing`);
      const violations = dockerfileViolations(copy);
      assert.ok(
        violations.some((violation) => expected.test(violation)),
        `${expected} not in ${JSON.stringify(violations)}`,
      );
    }
  });
});
