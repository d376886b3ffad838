import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { fuzz } from '../../test/fuzz.js';
import { FoleBackupError } from '../errors.js';
import {
  applyRetention,
  bucketKey,
  isoWeek,
  MAX_KEEP,
  parseDuration,
  parseKeepCount,
  subtractDuration,
  type BackupSummary,
  type Duration,
  type RetentionPolicy,
} from './policy.js';

let seq = 0;
function b(createdAt: string, extra: Partial<BackupSummary> = {}): BackupSummary {
  seq++;
  return {
    backupId: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    createdAt,
    host: 'h',
    storageRoot: '/srv/fole',
    tags: [],
    ...extra,
  };
}

function kept(list: BackupSummary[], policy: RetentionPolicy): string[] {
  return applyRetention(list, policy)
    .filter((d) => d.keep)
    .map((d) => d.createdAt)
    .sort();
}

describe('retention policy', () => {
  it('refuses an empty policy instead of removing everything', () => {
    expect(() => applyRetention([b('2026-01-01T00:00:00Z')], {})).toThrow(/empty retention policy/);
    expect(() => applyRetention([b('2026-01-01T00:00:00Z')], { daily: 0, last: 0 })).toThrow(/empty/);
  });

  it('rejects negative counts and bad durations', () => {
    expect(() => applyRetention([], { last: -1 })).toThrow(/whole number/);
    expect(() => applyRetention([], { within: '7x' })).toThrow(/invalid duration/);
    expect(() => parseDuration('')).toThrow();
    expect(parseDuration('1y2m3w4d5h')).toEqual({ years: 1, months: 2, weeks: 3, days: 4, hours: 5 });
  });

  it('keeps the last N', () => {
    const list = ['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z'].map((t) => b(t));
    expect(kept(list, { last: 2 })).toEqual(['2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z']);
  });

  it('keeps the newest backup of each of the last N days that have one, in UTC', () => {
    const list = [
      '2026-03-01T23:59:59Z', // day 1, newest
      '2026-03-01T00:00:00Z', // day 1, older: removed
      '2026-03-02T00:00:00Z', // day 2
      '2026-03-02T23:00:00Z', // day 2, newest
      '2026-03-05T12:00:00Z', // day 5 (days 3, 4 have none: they do not use up the count)
    ].map((t) => b(t));
    expect(kept(list, { daily: 3 })).toEqual(['2026-03-01T23:59:59Z', '2026-03-02T23:00:00Z', '2026-03-05T12:00:00Z']);
    expect(kept(list, { daily: 2 })).toEqual(['2026-03-02T23:00:00Z', '2026-03-05T12:00:00Z']);
  });

  it('uses UTC day boundaries whatever the offset written in the timestamp', () => {
    // 23:30 at -02:00 is 01:30 UTC the next day
    expect(bucketKey('daily', new Date('2026-03-01T23:30:00-02:00'))).toBe('2026-03-02');
    // a daylight-saving night in Europe is an ordinary UTC day
    expect(bucketKey('daily', new Date('2026-03-29T00:30:00Z'))).toBe('2026-03-29');
    expect(bucketKey('daily', new Date('2026-03-29T23:30:00Z'))).toBe('2026-03-29');
  });

  it('hourly buckets split at the UTC hour', () => {
    const list = ['2026-01-01T10:59:00Z', '2026-01-01T10:01:00Z', '2026-01-01T11:00:00Z'].map((t) => b(t));
    expect(kept(list, { hourly: 5 })).toEqual(['2026-01-01T10:59:00Z', '2026-01-01T11:00:00Z']);
  });

  it('weekly buckets are ISO weeks (Monday to Sunday), across a year boundary', () => {
    expect(isoWeek(new Date('2026-01-01T00:00:00Z'))).toEqual({ year: 2026, week: 1 }); // a Thursday
    expect(isoWeek(new Date('2027-01-01T00:00:00Z'))).toEqual({ year: 2026, week: 53 }); // a Friday
    expect(isoWeek(new Date('2024-12-30T00:00:00Z'))).toEqual({ year: 2025, week: 1 }); // a Monday
    const list = [
      '2026-12-27T12:00:00Z', // Sunday, week 52
      '2026-12-28T12:00:00Z', // Monday, week 53
      '2027-01-03T12:00:00Z', // Sunday, still week 53 of 2026
      '2027-01-04T12:00:00Z', // Monday, week 1 of 2027
    ].map((t) => b(t));
    expect(kept(list, { weekly: 2 })).toEqual(['2027-01-03T12:00:00Z', '2027-01-04T12:00:00Z']);
    expect(kept(list, { weekly: 3 })).toEqual(['2026-12-27T12:00:00Z', '2027-01-03T12:00:00Z', '2027-01-04T12:00:00Z']);
  });

  it('monthly and yearly buckets', () => {
    const list = ['2025-12-31T23:00:00Z', '2026-01-01T01:00:00Z', '2026-01-31T01:00:00Z', '2026-02-01T00:00:00Z'].map(
      (t) => b(t),
    );
    expect(kept(list, { monthly: 12 })).toEqual([
      '2025-12-31T23:00:00Z',
      '2026-01-31T01:00:00Z',
      '2026-02-01T00:00:00Z',
    ]);
    expect(kept(list, { yearly: 5 })).toEqual(['2025-12-31T23:00:00Z', '2026-02-01T00:00:00Z']);
  });

  it('a daily/weekly/monthly rotation over a year of daily backups keeps what it says', () => {
    const list: BackupSummary[] = [];
    for (let d = 0; d < 365; d++) list.push(b(new Date(Date.UTC(2026, 0, 1 + d, 3, 0, 0)).toISOString()));
    const decisions = applyRetention(list, { daily: 7, weekly: 4, monthly: 12 });
    const keep = decisions.filter((d) => d.keep);
    // 7 dailies; weekly and monthly mostly overlap with them or each other
    expect(keep.length).toBeGreaterThanOrEqual(7 + 4 - 1);
    expect(keep.length).toBeLessThanOrEqual(7 + 4 + 12);
    const newest = decisions[0];
    expect(newest?.reasons).toEqual(expect.arrayContaining(['daily 2026-12-31', 'monthly 2026-12']));
    // the oldest month kept is 12 months back from December
    expect(keep.some((d) => d.createdAt.startsWith('2026-01'))).toBe(true);
    for (const d of decisions) expect(d.keep).toBe(d.reasons.length > 0);
  });

  it('keep-within counts back from the newest backup, not from now', () => {
    const list = ['2020-01-01T00:00:00Z', '2020-01-05T00:00:00Z', '2020-01-08T00:00:00Z', '2020-01-10T00:00:00Z'].map(
      (t) => b(t),
    );
    expect(kept(list, { within: '5d' })).toEqual([
      '2020-01-05T00:00:00Z',
      '2020-01-08T00:00:00Z',
      '2020-01-10T00:00:00Z',
    ]);
    expect(subtractDuration(new Date('2026-03-31T00:00:00Z'), parseDuration('1m')).toISOString()).toBe(
      '2026-03-03T00:00:00.000Z',
    );
  });

  it('keeps tagged backups and says why', () => {
    const list = [
      b('2026-01-01T00:00:00Z', { tags: ['pre-migration:42'] }),
      b('2026-01-02T00:00:00Z'),
      b('2026-01-03T00:00:00Z'),
    ];
    const d = applyRetention(list, { last: 1, tags: ['pre-migration:42'] });
    expect(d.find((x) => x.createdAt.startsWith('2026-01-01'))?.reasons).toEqual(['tag pre-migration:42']);
    expect(d.find((x) => x.createdAt.startsWith('2026-01-02'))?.keep).toBe(false);
  });

  it('a tag rule also keeps the tags it prefixes before a colon, and no others', () => {
    const list = [
      b('2026-01-01T00:00:00Z', { tags: ['pre-migration:41'] }),
      b('2026-01-02T00:00:00Z', { tags: ['pre-migrationX'] }),
      b('2026-01-03T00:00:00Z', { tags: ['weekly'] }),
      b('2026-01-04T00:00:00Z'),
    ];
    const d = applyRetention(list, { last: 1, tags: ['pre-migration'] });
    expect(d.filter((x) => x.keep).map((x) => x.reasons)).toEqual([['last 1'], ['tag pre-migration:41']]);
  });

  it('applies the policy per STORAGE_ROOT and host', () => {
    const list = [
      b('2026-01-01T00:00:00Z', { storageRoot: '/a' }),
      b('2026-01-02T00:00:00Z', { storageRoot: '/a' }),
      b('2026-01-01T00:00:00Z', { storageRoot: '/b' }),
    ];
    expect(kept(list, { last: 1 })).toEqual(['2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z']);
    expect(
      applyRetention(list, { last: 1 })
        .filter((d) => d.keep)
        .map((d) => d.group)
        .sort(),
    ).toEqual(['h:/a', 'h:/b']);
  });
});

describe('retention values are parsed strictly, with bounds', () => {
  it('refuses a duration so long that its cutoff would overflow and keep nothing', () => {
    for (const text of ['300000y', '1y99999999m', '9007199254740993d', '99999999999999999999h', '10001y', '120001m']) {
      expect(() => parseDuration(text), text).toThrow(/longer than 10000 years/);
      expect(() => applyRetention([b('2026-01-01T00:00:00Z')], { within: text }), text).toThrow(/invalid duration/);
    }
    expect(parseDuration('10000y')).toMatchObject({ years: 10000 });
    // the longest accepted duration still keeps every backup in range, never none
    const list = [b('2026-01-01T00:00:00Z'), b('1990-06-01T00:00:00Z'), b('1970-01-01T00:00:00Z')];
    expect(kept(list, { within: '10000y' })).toHaveLength(3);
  });

  it('refuses a sign, exponent, hex, fraction or space in a duration', () => {
    for (const text of ['-1d', '+1d', '1e3d', '0x10d', '1.5d', '1d ', ' 1d', '1 d', 'd', '7', '7D', '１d']) {
      expect(() => parseDuration(text), text).toThrow(/invalid duration/);
    }
  });

  it('reads counts as plain digits within bounds', () => {
    expect(parseKeepCount('--keep-daily', '7')).toBe(7);
    expect(parseKeepCount('--keep-daily', '007')).toBe(7);
    expect(parseKeepCount('--keep-daily', '0')).toBe(0);
    expect(parseKeepCount('--keep-daily', String(MAX_KEEP))).toBe(MAX_KEEP);
    for (const text of [
      '1e3',
      '0x10',
      '-1',
      '+3',
      '1.0',
      '',
      ' 7',
      '7 ',
      'Infinity',
      'NaN',
      String(MAX_KEEP + 1),
      '99999999999999999999',
      '0b11',
      '0o7',
    ]) {
      expect(() => parseKeepCount('--keep-daily', text), text).toThrow(
        /--keep-daily must be a whole number from 0 to 1000000/,
      );
    }
    expect(() => applyRetention([], { daily: MAX_KEEP + 1 })).toThrow(/whole number/);
  });

  it('any string is a valid duration or a typed usage error, and a valid one gives a finite cutoff', () => {
    const durationish = fc.oneof(
      fc.string(),
      fc
        .array(
          fc.tuple(
            fc.oneof(fc.nat(), fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String)),
            fc.constantFrom('y', 'm', 'w', 'd', 'h', 'x', ''),
          ),
          { maxLength: 6 },
        )
        .map((parts) => parts.map(([n, u]) => `${n}${u}`).join('')),
    );
    fuzz(
      fc.property(durationish, (text) => {
        let d: Duration;
        try {
          d = parseDuration(text);
        } catch (err) {
          expect(err).toBeInstanceOf(FoleBackupError);
          expect((err as FoleBackupError).code).toBe('USAGE');
          return;
        }
        expect(Number.isFinite(subtractDuration(new Date('2026-01-01T00:00:00Z'), d).getTime())).toBe(true);
      }),
      2000,
    );
  });

  it('any string is a valid count or a typed usage error', () => {
    fuzz(
      fc.property(fc.oneof(fc.string(), fc.integer().map(String), fc.double().map(String)), (text) => {
        try {
          const n = parseKeepCount('--keep-last', text);
          expect(Number.isSafeInteger(n) && n >= 0 && n <= MAX_KEEP).toBe(true);
          expect(/^\d+$/.test(text)).toBe(true);
        } catch (err) {
          expect((err as FoleBackupError).code).toBe('USAGE');
        }
      }),
      2000,
    );
  });
});

describe('a backup stamped in the future', () => {
  it('is kept but sets no reference: keep-within and the buckets count from the real backups', () => {
    const now = new Date('2026-03-10T12:00:00Z');
    const real = [b('2026-03-10T11:00:00Z'), b('2026-03-09T11:00:00Z'), b('2026-02-01T11:00:00Z')];
    const future = b('2099-01-01T00:00:00Z');
    const decisions = applyRetention([...real, future], { within: '30d' }, now);
    const kept = decisions
      .filter((d) => d.keep)
      .map((d) => d.createdAt)
      .sort();
    expect(kept).toEqual(['2026-03-09T11:00:00Z', '2026-03-10T11:00:00Z', '2099-01-01T00:00:00Z']);
    expect(decisions.find((d) => d.backupId === future.backupId)?.reasons).toEqual([
      expect.stringMatching(/in the future/),
    ]);
    // without the present the newest backup is the reference: the 2099 one, and nothing real is kept
    expect(applyRetention([...real, future], { within: '30d' }).filter((d) => d.keep)).toHaveLength(1);
    // it takes no bucket slot either
    const daily = applyRetention([...real, future], { daily: 1 }, now)
      .filter((d) => d.keep)
      .map((d) => d.createdAt)
      .sort();
    expect(daily).toEqual(['2026-03-10T11:00:00Z', '2099-01-01T00:00:00Z']);
    // within the tolerance a backup is an ordinary one
    expect(
      applyRetention([b('2026-03-10T12:30:00Z'), ...real], { last: 1 }, now)
        .filter((d) => d.keep)
        .map((d) => d.createdAt),
    ).toEqual(['2026-03-10T12:30:00Z']);
  });
});
