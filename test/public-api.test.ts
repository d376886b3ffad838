/**
 * The library's public API (src/index.ts) is documented: every name it exports
 * has a TSDoc comment where it is declared and a line in docs/API.md, and the
 * package's subpath exports point at modules that exist.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const INDEX = 'src/index.ts';

function exportedSymbols(): { name: string; documented: boolean; where: string }[] {
  const program = ts.createProgram([INDEX], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(INDEX);
  if (source === undefined) throw new Error(`${INDEX} not found`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${INDEX} is not a module`);
  return checker.getExportsOfModule(moduleSymbol).map((exported) => {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const declaration = symbol.getDeclarations()?.[0];
    const docs = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    const tags = symbol.getJsDocTags(checker).length;
    return {
      name: exported.getName(),
      documented: docs !== '' || tags > 0,
      where: declaration === undefined ? '?' : declaration.getSourceFile().fileName,
    };
  });
}

describe('the public API', () => {
  const symbols = exportedSymbols();

  it('exports the entry points a FOLE server needs', () => {
    const names = new Set(symbols.map((s) => s.name));
    for (const needed of [
      'openRepository',
      'initRepository',
      'backup',
      'planRestore',
      'restore',
      'verifyBackup',
      'checkRepository',
      'listSnapshots',
      'readManifest',
      'acquireStorageLock',
      'RepositoryLock',
      'FoleBackupError',
      'StopError',
    ]) {
      expect(names, needed).toContain(needed);
    }
    expect(symbols.length).toBeGreaterThan(40);
  });

  it('documents every export with TSDoc where it is declared', () => {
    const undocumented = symbols.filter((s) => !s.documented).map((s) => `${s.name} (${s.where})`);
    expect(undocumented).toEqual([]);
  });

  it('lists every export in docs/API.md', () => {
    const api = readFileSync('docs/API.md', 'utf8');
    const missing = symbols.filter((s) => !api.includes(`\`${s.name}\``)).map((s) => s.name);
    expect(missing).toEqual([]);
  });

  it('has an example in docs/API.md that type-checks against the API', () => {
    const example = /```ts\n([\s\S]*?)```/.exec(readFileSync('docs/API.md', 'utf8'))?.[1];
    expect(example).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'fole-api-example-'));
    try {
      const file = join(dir, 'example.mts');
      const index = resolve('src/index.js');
      writeFileSync(file, `${(example ?? '').replaceAll("from 'fole-backup'", `from '${index}'`)}\nexport {};\n`);
      const program = ts.createProgram([file], {
        module: ts.ModuleKind.NodeNext,
        moduleResolution: ts.ModuleResolutionKind.NodeNext,
        target: ts.ScriptTarget.ES2022,
        types: ['node'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
      });
      const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(errors).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('points every subpath export of package.json at a module that exists', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
    };
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      const source = target.default.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts');
      expect(existsSync(source), `${subpath} → ${source}`).toBe(true);
      expect(target.types).toBe(target.default.replace(/\.js$/, '.d.ts'));
    }
  });
});
