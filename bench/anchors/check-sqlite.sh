#!/bin/sh
# The post-restore step a restic or Borg user needs before a restored STORAGE_ROOT
# goes live: PRAGMA integrity_check of every restored database, stopping at the
# first that fails. fole-backup's restore protocol does this itself (spec §7,
# step 3: "validate DB integrity"), so a restore compared without it compares
# different work. The benchmark counts this script's time, CPU and memory in the
# anchor's restore (as capture-sqlite.sh is counted in its backup).
#
# usage: check-sqlite.sh RESTORED_DIR
set -eu
cd "$1"
# every database restored: the backup held none from tmp/ or cache/ (the capture skips them), and the
# restored paths begin with the repository's absolute ones, which may pass through a /tmp
find . -type f -name '*.db' |
  while IFS= read -r db; do
    result=$(sqlite3 -bail "$db" 'PRAGMA integrity_check;')
    if [ "$result" != ok ]; then
      echo "integrity_check of $db: $result" >&2
      exit 1
    fi
  done
