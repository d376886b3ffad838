/**
 * Who owns what a restore writes. A backup records the numeric uid and gid of
 * every entry and of the root (like `tar --numeric-owner`: the ids, not the
 * names, since the restored tree runs under the same ids on the FOLE host).
 *
 *   run as root   every entry and the root get their recorded owner, before
 *                 their mode (chown may clear set-id bits; the mode comes last)
 *   run as anyone else   nobody can give files away: everything stays the
 *                 restoring user's, the modes are restored, and the restore
 *                 says once that the owners were not — unless every recorded
 *                 owner already is that user (then nothing is lost)
 *   an entry with no recorded owner (a backup made before owners were
 *                 recorded) keeps the owner it was created with, as before
 */

/** A numeric owner and group. */
export interface Owner {
  uid: number;
  gid: number;
}

/** The restoring process's identity (tests pass another). */
export interface RestoringUser extends Owner {
  root: boolean;
}

/** The effective uid and gid this process restores as; root when the effective uid is 0. */
function effectiveUser(): RestoringUser {
  const uid = process.geteuid?.() ?? -1;
  return { uid, gid: process.getegid?.() ?? -1, root: uid === 0 };
}

export class Ownership {
  /** Recorded owners the restore could not give. */
  private missed = 0;
  private example: Owner | undefined;

  constructor(private readonly user: RestoringUser = effectiveUser()) {}

  /** The owner to give an entry with recorded owner `o`; undefined: leave it as created. */
  give(o: Partial<Owner> | undefined): Owner | undefined {
    if (!this.user.root || o?.uid === undefined || o.gid === undefined) return undefined;
    return { uid: o.uid, gid: o.gid };
  }

  /** Note an entry's recorded owner, once per entry, for the warning. */
  observe(o: Partial<Owner> | undefined): void {
    if (this.user.root || o?.uid === undefined || o.gid === undefined) return;
    if (o.uid !== this.user.uid || o.gid !== this.user.gid) {
      this.missed++;
      this.example ??= { uid: o.uid, gid: o.gid };
    }
  }

  /** The one warning owed when recorded owners could not be given, else undefined. */
  warning(): string | undefined {
    if (this.missed === 0 || this.example === undefined) return undefined;
    const e = this.example;
    const them = this.missed === 1 ? 'an entry the backup records' : `${this.missed} entries the backup records`;
    return (
      `owners not restored: the restore is not running as root, so ${them} as owned by someone else (e.g. uid ` +
      `${e.uid} gid ${e.gid}) ` +
      `belong to uid ${this.user.uid} gid ${this.user.gid}; modes were restored. Run the restore as root to ` +
      `restore the owners too`
    );
  }
}
