/**
 * The copy-paste ratchet: jscpd (settings in .jscpd.json) counts the clones in
 * src/, test/ and bench/, and the count may never rise above the budget in
 * scripts/clone-budget.json. When it falls, the budget must be lowered to the
 * new count in the same change, so the budget only ever goes down.
 *
 *   node --import tsx scripts/clones.ts          check against the budget
 *   node --import tsx scripts/clones.ts --list   also print every clone
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Report {
  statistics: { total: { clones: number; duplicatedLines: number; percentage: number } };
  duplicates: {
    firstFile: { name: string; start: number; end: number };
    secondFile: { name: string; start: number; end: number };
  }[];
}

const budgetFile = join(import.meta.dirname, 'clone-budget.json');
const budget = (JSON.parse(readFileSync(budgetFile, 'utf8')) as { clones: number }).clones;
const out = mkdtempSync(join(tmpdir(), 'fole-jscpd-'));
let report: Report;
try {
  // jscpd says which config it used on stderr; its own errors surface through the exception
  execFileSync('npx', ['jscpd', '--config', '.jscpd.json', '--output', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  report = JSON.parse(readFileSync(join(out, 'jscpd-report.json'), 'utf8')) as Report;
} finally {
  rmSync(out, { recursive: true, force: true });
}

const { clones, duplicatedLines, percentage } = report.statistics.total;
const list = process.argv.includes('--list');
if (list || clones > budget) {
  for (const d of report.duplicates) {
    const a = d.firstFile;
    const b = d.secondFile;
    console.log(`${a.name}:${a.start}-${a.end}  =  ${b.name}:${b.start}-${b.end}`);
  }
}
console.log(
  `copy-paste: ${clones} clones, ${duplicatedLines} duplicated lines (${percentage.toFixed(2)}%); budget ${budget}`,
);
if (clones > budget) {
  console.error(`copy-paste: ${clones - budget} clone(s) over the budget: share the code instead of copying it`);
  process.exitCode = 1;
} else if (clones < budget) {
  console.error(`copy-paste: fewer clones than the budget: lower "clones" in ${budgetFile} to ${clones}`);
  process.exitCode = 1;
}
