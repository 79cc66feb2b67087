/**
 * The README's configuration tables, generated from the settings schemas (platform/src/settings.ts):
 * one section per owner, the platform, the gateway and each service that has settings of its own,
 * written between `<!-- config:start -->` and `<!-- config:end -->`. What the README documents is
 * then what the processes accept, defaults and bounds included.
 *
 * `npm run docs:config` rewrites the README; `--check` exits 1 when it is stale (a test runs the
 * same comparison); `--readme <file>` works on another copy (tests).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, SERVICE_NAMES, isMain, platformSettings, tracingSettings } from '../platform/src/config.ts';
import { inputLimitSettings } from '../platform/src/input.ts';
import { subgraphLimitSettings } from '../platform/src/limits.ts';
import { type SettingRow, type SettingsSchema, describeSettings } from '../platform/src/settings.ts';
import { gatewaySettings } from '../gateway/src/settings.ts';
import { writeOrCheck } from './generated-file.ts';
import { loadServiceModule } from './services.ts';

/** The file the tables live in. */
export const README_FILE = path.join(REPO_ROOT, 'README.md');
/** The markers around the generated tables; everything between them is replaced. */
export const CONFIG_START = '<!-- config:start -->';
export const CONFIG_END = '<!-- config:end -->';

/** One section of the tables: who reads the variables, and the schemas that declare them. */
interface Owner {
  readonly title: string;
  /** Markdown under the title: where the schemas are. */
  readonly intro: string;
  readonly schemas: readonly SettingsSchema[];
}

async function owners(): Promise<Owner[]> {
  const services: Owner[] = [];
  for (const name of SERVICE_NAMES) {
    const module = await loadServiceModule(name);
    if (!module.settings) continue;
    services.push({
      title: `${name[0].toUpperCase()}${name.slice(1)} service`,
      intro: `The \`settings\` of \`${name}Service\` (\`subgraphs/${name}/src/service.ts\`), parsed once when the service starts.`,
      schemas: [module.settings],
    });
  }
  return [
    {
      title: 'Platform: every process',
      intro:
        'Read by every service and the gateway (`loadConfig`, `platform/src/config.ts`; tracing, subgraph and input limits beside the code they set). ' +
        "The `OTEL_*` variables are OpenTelemetry's own: [docs/operations.md § Traces](docs/operations.md#traces).",
      schemas: [platformSettings, tracingSettings, subgraphLimitSettings, inputLimitSettings],
    },
    {
      title: 'Gateway',
      intro: 'Read by the gateway only (`gateway/src/settings.ts`), once when it starts.',
      schemas: [gatewaySettings],
    },
    ...services,
  ];
}

/** A table cell: a `|` would end it. */
const cell = (markdown: string) => markdown.replaceAll('|', '\\|');

function table(rows: readonly SettingRow[]): string {
  const lines = rows.map((row) => `| \`${row.variable}\` | ${cell(row.default)} | ${cell(row.meaning)} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...lines].join('\n');
}

/** The generated part of the README, markers included. */
export async function renderConfigTables(): Promise<string> {
  const sections = (await owners()).map((owner) => {
    const seen = new Set<string>();
    // A variable two schemas of one owner read (NODE_ENV) is listed once, where it is declared first.
    const rows = owner.schemas
      .flatMap((schema) => describeSettings(schema))
      .filter((row) => {
        if (seen.has(row.variable)) return false;
        seen.add(row.variable);
        return true;
      });
    return `### ${owner.title}\n\n${owner.intro}\n\n${table(rows)}`;
  });
  return [
    CONFIG_START,
    '<!-- Generated from the settings schemas by `npm run docs:config`: change the schemas, not these tables. -->',
    '',
    sections.join('\n\n'),
    '',
    CONFIG_END,
  ].join('\n');
}

/** `readme` with its generated part replaced by `tables`; throws when the markers are missing. */
export function withConfigTables(readme: string, tables: string): string {
  const start = readme.indexOf(CONFIG_START);
  const end = readme.indexOf(CONFIG_END, start);
  if (start < 0 || end < 0) throw new Error(`the README has no ${CONFIG_START} ... ${CONFIG_END} section for the configuration tables`);
  return readme.slice(0, start) + tables + readme.slice(end + CONFIG_END.length);
}

if (isMain(import.meta.url)) {
  const readmeFlag = process.argv.indexOf('--readme');
  const file = readmeFlag > 0 ? path.resolve(process.argv[readmeFlag + 1] ?? '') : README_FILE;
  await writeOrCheck(file, async () => withConfigTables(readFileSync(file, 'utf8'), await renderConfigTables()), 'npm run docs:config');
}
