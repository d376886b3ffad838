#!/bin/bash
# Peak RSS and time of list, ls, find and diff on a backup of a million files (issue #16: browsing streams).
# Measured, never asserted. Usage: bench/browse-million.sh [WORK_DIR]  (default /tmp/fole-browse-million;
# needs ~5 GB of free disk and a million free inodes; about 6 minutes, most of it the two backups).
set -euo pipefail
W=${1:-/tmp/fole-browse-million}
F="node $(cd "$(dirname "$0")/.." && pwd)/dist/cli/main.js"
export FOLE_BACKUP_PASSWORD=bench-password FOLE_BACKUP_STATE_DIR=$W/state
rm -rf "$W"
mkdir -p "$W"
# 1000 tile columns of 1000 small files each, and a core.db: a million distinct files
python3 - "$W/root" <<'PY'
import os, sqlite3, sys
root = sys.argv[1]
for d in range(1000):
    p = f'{root}/projects/p{d // 100:02d}/tiles/{d:04d}'
    os.makedirs(p)
    for f in range(1000):
        with open(f'{p}/{f:04d}.txt', 'w') as fh:
            fh.write(f'tile {d} {f}\n')
os.makedirs(f'{root}/core')
c = sqlite3.connect(f'{root}/core/core.db')
c.execute('pragma journal_mode=wal')
c.execute('create table t(x)')
c.execute('insert into t values(1)')
c.commit()
c.close()
PY
t() { /usr/bin/time -f "  %e s, %M KiB peak RSS" "$@"; }
$F init --repo "$W/repo" > /dev/null
echo "backup 1:"; t $F backup --repo "$W/repo" --storage-root "$W/root" --fole-version 1.0.0 --quiet
for d in 0 1 2 3 4; do
  for f in $(seq -w 0 199); do echo changed > "$W/root/projects/p00/tiles/000$d/0$f.txt"; done
done
echo "backup 2 (1,000 files changed):"; t $F backup --repo "$W/repo" --storage-root "$W/root" --fole-version 1.0.0 --quiet
read -r A B < <($F list --repo "$W/repo" --json | python3 -c \
  "import json,sys; l=json.load(sys.stdin); print(l[0]['backupId'], l[1]['backupId'])")
echo "list:"; t $F list --repo "$W/repo" > /dev/null
echo "ls latest (the top only):"; t $F ls latest --repo "$W/repo" > /dev/null
echo "ls -R latest:"; t $F ls latest --recursive --repo "$W/repo" > /dev/null
echo "ls -R --long --json latest:"; t $F ls latest --recursive --long --json --repo "$W/repo" > /dev/null
echo "find '*.txt' (every backup):"; t $F find '*.txt' --repo "$W/repo" > /dev/null
echo "diff:"; t $F diff "$A" "$B" --repo "$W/repo" > /dev/null
rm -rf "$W"
