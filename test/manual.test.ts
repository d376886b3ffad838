/**
 * docs/MANUAL.md and the CLI agree: every command, argument and flag of the real
 * commander program (src/cli/main.ts buildProgram) is in the manual's command
 * reference, under its own command, written as `--help` writes it; the reference
 * names no command or flag the CLI lacks; every error and STOP code of
 * src/errors.ts and every environment variable a flag's help names is explained.
 * A new flag without a manual entry fails here.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './cli-helpers.js';

interface CliOption {
  flags: string;
  long: string | undefined;
  description: string;
}
interface CliCommand {
  /** Names from the program down, e.g. ['key', 'add']; [] is the program itself. */
  path: string[];
  options: CliOption[];
  /** Each argument as the usage line writes it: `<backup>`, `[backups...]`. */
  args: string[];
  commands: CliCommand[];
}

/**
 * Loading src/cli/main.ts runs the CLI, so the program is built in a child
 * process whose arguments (`--version`) make that run print one line and end;
 * the tree follows a marker line.
 */
const MARKER = '--- program ---';
const DESCRIBE_PROGRAM = `
process.argv = [process.argv[0], 'fole-backup', '--version'];
const { buildProgram } = await import(${JSON.stringify(pathToFileURL(CLI).href)});
const arg = (a) => (a.required ? '<' : '[') + a.name() + (a.variadic ? '...' : '') + (a.required ? '>' : ']');
const walk = (c, path) => ({
  path,
  options: c.options.map((o) => ({ flags: o.flags, long: o.long, description: o.description })),
  args: c.registeredArguments.map(arg),
  commands: c.commands.map((s) => walk(s, [...path, s.name()])),
});
process.stdout.write(${JSON.stringify(`\n${MARKER}\n`)} + JSON.stringify(walk(buildProgram(), [])) + '\\n');
`;

async function describeProgram(): Promise<CliCommand> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', DESCRIBE_PROGRAM],
    { maxBuffer: 16 << 20 },
  );
  const at = stdout.indexOf(MARKER);
  expect(at, `no program description in:\n${stdout}`).toBeGreaterThanOrEqual(0);
  return JSON.parse(stdout.slice(at + MARKER.length)) as CliCommand;
}

const flatten = (c: CliCommand): CliCommand[] => [c, ...c.commands.flatMap(flatten)];

const MANUAL = readFileSync(new URL('../docs/MANUAL.md', import.meta.url), 'utf8');
const ERRORS_TS = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8');

/** The text under a `## title` heading, up to the next `## ` heading. */
function chapter(title: string): string {
  const start = MANUAL.indexOf(`\n## ${title}\n`);
  expect(start, `docs/MANUAL.md has no "## ${title}"`).toBeGreaterThanOrEqual(0);
  const end = MANUAL.indexOf('\n## ', start + 1);
  return MANUAL.slice(start, end === -1 ? undefined : end);
}

/** The `### heading` sections of a chapter, by heading text. */
function sections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(/\n### /).slice(1)) {
    const nl = part.indexOf('\n');
    out.set(part.slice(0, nl).trim(), part.slice(nl + 1));
  }
  return out;
}

/** The members of `export type <name> = | 'A' | 'B' …;` in src/errors.ts. */
function unionMembers(name: string): string[] {
  const m = new RegExp(`export type ${name} =([^;]*);`).exec(ERRORS_TS);
  expect(m, `src/errors.ts declares no type ${name}`).not.toBeNull();
  return [...(m?.[1] ?? '').matchAll(/\|\s*'([A-Z_]+)'/g)].map((x) => x[1] as string);
}

/** The codes a list in `text` explains: lines that start `- \`CODE\` —`. */
function explainedCodes(text: string): string[] {
  return [...text.matchAll(/^- `([A-Z_]+)` —/gm)].map((x) => x[1] as string);
}

const headingOf = (c: CliCommand): string =>
  c.path.length === 0 ? 'Global flags' : `\`fole-backup ${c.path.join(' ')}\``;

describe('docs/MANUAL.md', () => {
  let program: CliCommand;
  let commands: CliCommand[];
  let reference: Map<string, string>;

  beforeAll(async () => {
    program = await describeProgram();
    commands = flatten(program);
    reference = sections(chapter('Command reference'));
  });

  it('reads the real program: its commands and flags are found', () => {
    const names = commands.map((c) => c.path.join(' '));
    expect(names).toEqual(expect.arrayContaining(['', 'backup', 'restore', 'key', 'key add', 'key remove']));
    const backup = commands.find((c) => c.path.join(' ') === 'backup');
    expect(backup?.options.map((o) => o.long)).toContain('--storage-root');
  });

  it('has a command reference section for every command', () => {
    const missing = commands.map(headingOf).filter((h) => !reference.has(h));
    expect(missing).toEqual([]);
  });

  it('lists every flag under its own command, as --help writes it', () => {
    const missing: string[] = [];
    for (const c of commands) {
      const body = reference.get(headingOf(c)) ?? '';
      for (const o of c.options) if (!body.includes(`\`${o.flags}\``)) missing.push(`${headingOf(c)}: ${o.flags}`);
    }
    expect(missing).toEqual([]);
  });

  it("names every command's arguments in its section", () => {
    const missing: string[] = [];
    for (const c of commands) {
      const body = reference.get(headingOf(c)) ?? '';
      for (const a of c.args) if (!body.includes(a)) missing.push(`${headingOf(c)}: ${a}`);
    }
    expect(missing).toEqual([]);
  });

  it('documents no command or flag the CLI does not have', () => {
    const headings = new Set(commands.map(headingOf));
    expect([...reference.keys()].filter((h) => !headings.has(h))).toEqual([]);
    const global = new Set(program.options.map((o) => o.long));
    const unknown: string[] = [];
    for (const c of commands) {
      const own = new Set([...c.options.map((o) => o.long), ...global, '--help']);
      for (const [flag] of (reference.get(headingOf(c)) ?? '').matchAll(/--[a-z][a-z-]*/g))
        if (!own.has(flag)) unknown.push(`${headingOf(c)}: ${flag}`);
    }
    expect(unknown).toEqual([]);
  });

  it('explains every STOP code and every error code of src/errors.ts, and no other', () => {
    const codes = sections(chapter('Error and STOP codes'));
    const stops = explainedCodes(codes.get('STOP codes (exit 3)') ?? '');
    const errors = explainedCodes(codes.get('Error codes (exit 1; `USAGE` exits 2)') ?? '');
    expect([...stops].sort()).toEqual(unionMembers('StopCode').sort());
    expect([...errors].sort()).toEqual(unionMembers('ErrorCode').sort());
  });

  it('explains every environment variable a flag defaults to', () => {
    const table = chapter('Environment variables');
    const named = commands.flatMap((c) => c.options.flatMap((o) => [...o.description.matchAll(/\$([A-Z_]+)/g)]));
    const missing = [...new Set(named.map((m) => m[1] as string))].filter((v) => !table.includes(`| \`${v}\` |`));
    expect(named.length).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});
