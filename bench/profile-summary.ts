/**
 * Summarise the .cpuprofile files of a directory (from `node --cpu-prof
 * --cpu-prof-dir DIR …`) as Markdown on stdout.
 *
 *   node --import tsx bench/profile-summary.ts DIR [TOP]
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { profileMarkdown, summarizeProfileDir } from './lib/cpu-profile.js';

const dir = process.argv[2];
if (dir === undefined) {
  process.stderr.write('usage: node --import tsx bench/profile-summary.ts DIR [TOP]\n');
  process.exit(2);
}
const repoRoot = resolve(fileURLToPath(new URL('..', import.meta.url)));
const top = Number(process.argv[3] ?? 25);
process.stdout.write(`${profileMarkdown(`CPU profile ${dir}`, summarizeProfileDir(resolve(dir), repoRoot), top)}\n`);
