/**
 * The layering rule: src/ is a building of floors, and an import may only run
 * down (or stay on its floor, within its own folder). A folder that needs
 * something from a floor above is a sign that the thing belongs lower.
 * Tests may import from anywhere.
 */
const FLOORS = [
  ['errors.ts'],
  // native: the module built from native/ (encryption, directories read ahead)
  ['host', 'native'],
  ['concurrency', 'crypto', 'progress'],
  ['fs'],
  ['backend'],
  ['repository'],
  ['trust'],
  ['snapshot'],
  ['sqlite'],
  ['storage'],
  ['manifest', 'retention', 'prune', 'demo', 'browse'],
  ['verify'],
  // repair reads packs as verify does
  ['backup', 'repair'],
  ['restore'],
  // offsite copies: read like verify, write like backup
  ['copy'],
  // serve-repo's HTTP server: an adapter over the library, below the CLI that starts it
  ['server'],
  ['cli', 'index.ts'],
];

const paths = (folders) => `^src/(${folders.map((f) => f.replace('.', '\\.')).join('|')})(/|$)`;

const floorRules = FLOORS.flatMap((floor, i) => {
  const above = FLOORS.slice(i + 1).flat();
  const beside = floor.filter((f) => !f.endsWith('.ts'));
  return [
    ...(above.length === 0
      ? []
      : [
          {
            name: `floor-${i}-imports-up`,
            comment: `${floor.join(', ')} may not import from a floor above (${above.join(', ')})`,
            severity: 'error',
            from: { path: paths(floor), pathNot: '\\.test\\.ts$' },
            to: { path: paths(above) },
          },
        ]),
    ...beside.map((folder) => ({
      name: `${folder}-imports-sideways`,
      comment: `${folder} may not import from another folder on its own floor`,
      severity: 'error',
      from: { path: `^src/${folder}/`, pathNot: '\\.test\\.ts$' },
      to: { path: paths(floor.filter((f) => f !== folder)) },
    })),
  ];
});

module.exports = {
  forbidden: [
    ...floorRules,
    {
      name: 'no-cycles',
      comment: 'no import cycles, even inside a folder',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { circular: true, pathNot: '\\.test\\.ts$' },
    },
    {
      name: 'every-folder-placed',
      comment: 'a new folder under src/ gets its floor in .dependency-cruiser.cjs',
      severity: 'error',
      from: { path: '^src/', pathNot: `${paths(FLOORS.flat())}|\\.test\\.ts$` },
      to: {},
    },
    {
      name: 'every-folder-placed-imported',
      comment: 'a new folder under src/ gets its floor in .dependency-cruiser.cjs',
      severity: 'error',
      from: {},
      to: { path: '^src/', pathNot: `${paths(FLOORS.flat())}|\\.test\\.ts$` },
    },
    {
      name: 'src-does-not-import-tests',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { path: '(^test/|^bench/|\\.test\\.ts$)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|bench/out)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
