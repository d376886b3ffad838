/**
 * Retention (which backups a rotation keeps): a PURE function from the list of backups and a
 * policy to keep/remove decisions, each with its reasons. No I/O, no clock
 * other than the backups' own times.
 *
 * Rules (restic's, which operators know):
 * - Backups are grouped by (host, storageRoot); the policy applies per group.
 * - keep-last N: the N newest.
 * - keep-hourly/daily/weekly/monthly/yearly N: walking from newest to oldest, the
 *   newest backup of each of the last N hours/days/weeks/months/years that HAVE a
 *   backup. Buckets are calendar periods in **UTC** (weeks are ISO-8601 weeks,
 *   Monday to Sunday), so a policy means the same on every host whatever its time
 *   zone, and daylight-saving changes never merge or split a day.
 * - keep-within DURATION: every backup newer than the group's NEWEST backup minus
 *   the duration (not "now" minus it: if backups stopped a month ago, a
 *   keep-within of a week still keeps the last week of them).
 * - keep-tag T: every backup carrying tag T, or a tag `T:<anything>` (so
 *   `pre-migration` keeps every `pre-migration:<id>` backup).
 * A backup is kept if any rule keeps it; the reasons say which. An empty policy
 * is refused: it would remove everything.
 */
import { FoleBackupError } from '../errors.js';
import { labelProblem } from '../snapshot/fields.js';
import { printablePath } from '../snapshot/validate.js';

/** How many backups to keep: the last N, N per hour/day/week/month/year, all within a duration, and those with
 * given tags (restic's --keep-* rules). */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** A duration like "7d", "36h", "2w", "1y6m". */
  within?: string;
  tags?: string[];
}

/** What a retention policy looks at in a backup. */
export interface BackupSummary {
  backupId: string;
  createdAt: string;
  host: string;
  storageRoot: string;
  tags: string[];
}

/** One backup's fate under a policy, with the rules that keep it. */
export interface RetentionDecision {
  backupId: string;
  createdAt: string;
  group: string;
  keep: boolean;
  reasons: string[];
}

const BUCKETS = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type Bucket = (typeof BUCKETS)[number];

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** ISO-8601 week-numbering year and week of a UTC date. */
export function isoWeek(d: Date): { year: number; week: number } {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7; // Monday=1 … Sunday=7
  t.setUTCDate(t.getUTCDate() + 4 - day); // the Thursday of this week decides the year
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  return { year: t.getUTCFullYear(), week: Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

export function bucketKey(bucket: Bucket, d: Date): string {
  const y = d.getUTCFullYear();
  switch (bucket) {
    case 'hourly':
      return `${y}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}`;
    case 'daily':
      return `${y}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
    case 'weekly': {
      const w = isoWeek(d);
      return `${w.year}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${y}-${pad(d.getUTCMonth() + 1)}`;
    case 'yearly':
      return `${y}`;
  }
}

export interface Duration {
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
}

/** How far after now a backup's time may lie before it counts as stamped by a clock that ran ahead. */
const FUTURE_TOLERANCE_MS = 60 * 60_000;

/** The longest --keep-within accepted: ten thousand years, far past any real retention, well inside a Date. */
const MAX_DURATION_YEARS = 10_000;
const HOURS_PER: Record<keyof Duration, number> = { years: 8766, months: 730.5, weeks: 168, days: 24, hours: 1 };
/** The most backups a --keep-* count may name; a larger one is a typo or an overflow, not a policy. */
export const MAX_KEEP = 1_000_000;

function badDuration(text: string, why: string): FoleBackupError {
  return new FoleBackupError('USAGE', `invalid duration ${JSON.stringify(text)}: ${why}`, {
    hint:
      `use whole numbers with units y (years), m (months), w (weeks), d (days), h (hours), e.g. 7d, 36h, ` +
      `1y6m; at most ${MAX_DURATION_YEARS} years in all`,
  });
}

/**
 * Parse "1y2m3w4d5h" (any subset, in any order). Strict: plain decimal digits
 * only (no sign, exponent, hex or fraction), and bounded, so that no input can
 * overflow the date arithmetic into a cutoff that keeps nothing.
 */
export function parseDuration(text: string): Duration {
  if (!/^(?:\d+[ymwdh])+$/.test(text)) {
    throw badDuration(text, text.length === 0 ? 'it is empty' : 'not a list of whole numbers with units');
  }
  const d: Duration = { years: 0, months: 0, weeks: 0, days: 0, hours: 0 };
  let hours = 0;
  for (const m of text.matchAll(/(\d+)([ymwdh])/g)) {
    const digits = (m[1] as string).replace(/^0+(?=\d)/, '');
    const field = ({ y: 'years', m: 'months', w: 'weeks', d: 'days', h: 'hours' } as const)[
      m[2] as 'y' | 'm' | 'w' | 'd' | 'h'
    ];
    // ten digits exceed any bound below; comparing lengths first keeps Number() exact
    const n = digits.length > 10 ? Infinity : Number(digits);
    hours += n * HOURS_PER[field];
    if (!(hours <= MAX_DURATION_YEARS * HOURS_PER.years))
      throw badDuration(text, `longer than ${MAX_DURATION_YEARS} years`);
    d[field] += n;
  }
  return d;
}

/**
 * Parse a --keep-* count: plain decimal digits (no sign, exponent, hex or
 * fraction: `1e3` and `0x10` are refused, not read as 1000 and 16), at most
 * MAX_KEEP.
 */
export function parseKeepCount(flag: string, text: string): number {
  const digits = text.replace(/^0+(?=\d)/, '');
  if (!/^\d+$/.test(text) || digits.length > 7 || Number(digits) > MAX_KEEP) {
    throw new FoleBackupError(
      'USAGE',
      `${flag} must be a whole number from 0 to ${MAX_KEEP}, not ${JSON.stringify(text)}`,
      {
        hint: 'write the count in plain digits, e.g. --keep-daily 7',
      },
    );
  }
  return Number(digits);
}

/** `t` minus a duration, in UTC calendar arithmetic. */
export function subtractDuration(t: Date, d: Duration): Date {
  const r = new Date(t.getTime());
  r.setUTCFullYear(r.getUTCFullYear() - d.years, r.getUTCMonth() - d.months, r.getUTCDate() - d.weeks * 7 - d.days);
  r.setUTCHours(r.getUTCHours() - d.hours);
  return r;
}

function checkCount(name: string, n: number | undefined): void {
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 0 || n > MAX_KEEP)) {
    throw new FoleBackupError('USAGE', `--keep-${name} must be a whole number from 0 to ${MAX_KEEP}, not ${n}`);
  }
}

/** Throws USAGE for an invalid or empty policy. */
export function validatePolicy(p: RetentionPolicy): void {
  checkCount('last', p.last);
  for (const b of BUCKETS) checkCount(b, p[b]);
  if (p.within !== undefined && typeof p.within !== 'string')
    throw new FoleBackupError('USAGE', 'keep-within must be a duration such as 7d');
  if (p.within !== undefined) parseDuration(p.within);
  if (p.tags !== undefined && (!Array.isArray(p.tags) || !p.tags.every((t) => typeof t === 'string'))) {
    throw new FoleBackupError('USAGE', 'keep-tag must be a list of tags');
  }
  // a tag rule can only match tags a backup may carry: the same rule as --tag
  for (const t of p.tags ?? []) {
    const problem = labelProblem(t);
    if (problem !== undefined)
      throw new FoleBackupError('USAGE', `--keep-tag ${printablePath(t.slice(0, 60))} is not accepted: ${problem}`);
  }
  const any =
    (p.last ?? 0) > 0 || BUCKETS.some((b) => (p[b] ?? 0) > 0) || p.within !== undefined || (p.tags?.length ?? 0) > 0;
  if (!any) {
    throw new FoleBackupError('USAGE', 'empty retention policy: it would remove every backup', {
      hint: 'give at least one --keep-* rule, e.g. --keep-daily 7 --keep-weekly 5 --keep-monthly 12',
    });
  }
}

export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  if (p.last) parts.push(`last ${p.last}`);
  for (const b of BUCKETS) if (p[b]) parts.push(`${b} ${p[b]}`);
  if (p.within) parts.push(`within ${p.within}`);
  if (p.tags?.length) parts.push(`tags ${p.tags.map(printablePath).join(',')}`);
  return parts.join(', ');
}

/**
 * Decide which backups to keep. Returns one decision per backup, newest first
 * within each group, groups in order of their newest backup.
 */
export function applyRetention(
  backups: readonly BackupSummary[],
  policy: RetentionPolicy,
  now?: Date,
): RetentionDecision[] {
  validatePolicy(policy);
  // A backup stamped well after `now` (a host whose clock ran ahead) would become the
  // group's newest: keep-within would count back from a date years away and keep
  // nothing real, and it would take a slot of every bucket. It is kept, said why, and
  // takes part in no rule.
  const futureAfter = now === undefined ? Infinity : now.getTime() + FUTURE_TOLERANCE_MS;
  const isFuture = (b: BackupSummary): boolean => Date.parse(b.createdAt) > futureAfter;
  const within = policy.within !== undefined ? parseDuration(policy.within) : undefined;
  const groups = new Map<string, BackupSummary[]>();
  for (const b of backups) {
    const key = `${b.host}:${b.storageRoot}`;
    const list = groups.get(key) ?? [];
    list.push(b);
    groups.set(key, list);
  }
  const out: RetentionDecision[] = [];
  const ordered = [...groups.entries()]
    .map(([group, list]) => ({
      group,
      list: [...list].sort((a, b) =>
        a.createdAt > b.createdAt ? -1 : a.createdAt < b.createdAt ? 1 : a.backupId < b.backupId ? 1 : -1,
      ),
    }))
    .sort((a, b) => ((a.list[0]?.createdAt ?? '') > (b.list[0]?.createdAt ?? '') ? -1 : 1));
  for (const { group, list: all } of ordered) {
    for (const b of all.filter(isFuture)) {
      out.push({
        backupId: b.backupId,
        createdAt: b.createdAt,
        group,
        keep: true,
        reasons: ['created in the future (check the clock of the host that took it)'],
      });
    }
    const list = all.filter((b) => !isFuture(b));
    const newest = list[0];
    const cutoff = within && newest ? subtractDuration(new Date(newest.createdAt), within).getTime() : undefined;
    const left: Record<Bucket, number> = {
      hourly: policy.hourly ?? 0,
      daily: policy.daily ?? 0,
      weekly: policy.weekly ?? 0,
      monthly: policy.monthly ?? 0,
      yearly: policy.yearly ?? 0,
    };
    const lastKey: Partial<Record<Bucket, string>> = {};
    list.forEach((b, i) => {
      const reasons: string[] = [];
      const t = new Date(b.createdAt);
      if (i < (policy.last ?? 0)) reasons.push(`last ${policy.last}`);
      for (const bucket of BUCKETS) {
        if (left[bucket] <= 0) continue;
        const key = bucketKey(bucket, t);
        if (key !== lastKey[bucket]) {
          lastKey[bucket] = key;
          left[bucket]--;
          reasons.push(`${bucket} ${key}`);
        }
      }
      if (cutoff !== undefined && t.getTime() >= cutoff) reasons.push(`within ${policy.within}`);
      for (const tag of policy.tags ?? []) {
        const hit = b.tags.find((t) => t === tag || t.startsWith(`${tag}:`));
        if (hit !== undefined) reasons.push(`tag ${hit}`);
      }
      out.push({ backupId: b.backupId, createdAt: b.createdAt, group, keep: reasons.length > 0, reasons });
    });
  }
  return out;
}
