/**
 * No line of our TypeScript, JavaScript config or JSON is longer than 120
 * characters. Biome's formatter wraps code but leaves long strings and comments
 * alone, so this check covers what it cannot.
 *
 *   node --import tsx scripts/line-length.ts
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const MAX = 120;
const files = execFileSync(
  'git',
  ['ls-files', '--cached', '--others', '--exclude-standard', '*.ts', '*.cjs', '*.json'],
  {
    encoding: 'utf8',
  },
)
  .split('\n')
  .filter((f) => f !== '' && f !== 'package-lock.json');

let long = 0;
for (const file of files) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // listed by git but deleted in the work tree
  }
  text.split('\n').forEach((line, i) => {
    // code points, not UTF-16 units: "—" and "≤" are one character on screen
    const width = [...line].length;
    if (width > MAX) {
      long++;
      console.log(`${file}:${i + 1}: ${width} characters`);
    }
  });
}
if (long > 0) {
  console.error(`line length: ${long} line(s) longer than ${MAX} characters: split the string or comment`);
  process.exitCode = 1;
}
