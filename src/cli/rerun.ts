/** This command line again, to be run with --request once its request is approved (nothing in it is secret). */
export function rerunCommand(): string {
  const args = process.argv.slice(2).filter((a, i, all) => a !== '--request' && all[i - 1] !== '--request');
  const sh = (a: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['fole-backup', ...args.map(sh)].join(' ');
}
