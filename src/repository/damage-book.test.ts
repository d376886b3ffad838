import { describe, expect, it } from 'vitest';
import { checkDamageRecord, DamageBook, type DamageRecord } from './damage-book.js';

const P1 = 'a'.repeat(64);
const P2 = 'b'.repeat(64);
const B1 = 'c'.repeat(64);
const B2 = 'd'.repeat(64);
const record = (r: Partial<DamageRecord> = {}): DamageRecord => ({
  version: 1,
  createdAt: '2026-12-06T10:00:00.000Z',
  source: 'check',
  packs: [],
  damagedPacks: [],
  blobs: [],
  lost: [],
  ...r,
});

describe('checkDamageRecord', () => {
  it('accepts what a check writes', () => {
    const r = record({ packs: [P1], damagedPacks: [P2], blobs: [[P2, B1]], lost: [B2] });
    expect(checkDamageRecord(JSON.parse(JSON.stringify(r)), 'n')).toEqual(r);
  });

  it.each([
    ['not an object', 'x'],
    ['null', null],
    ['another version', { ...record(), version: 2 }],
    ['no date', { ...record(), createdAt: 'yesterday' }],
    ['an unknown source', { ...record(), source: 'agent' }],
    ['a pack name that is no id', { ...record(), packs: ['../../config'] }],
    ['upper-case ids', { ...record(), lost: [B1.toUpperCase()] }],
    ['a blob pair of three', { ...record(), blobs: [[P1, B1, B2]] }],
    ['a blob list that is an object', { ...record(), blobs: { length: 1 } }],
    ['no damagedPacks', { ...record(), damagedPacks: undefined }],
  ])('refuses %s (REPO_CORRUPT naming the record)', (_what, v) => {
    expect(() => checkDamageRecord(v, 'NAME')).toThrow(/damage\/NAME/);
  });
});

describe('DamageBook', () => {
  it('merges records: whole packs, single blobs, damaged packs and lost blobs', () => {
    const book = new DamageBook(
      new Map([
        ['r1', record({ packs: [P1] })],
        ['r2', record({ source: 'verify', blobs: [[P2, B1]] })],
        ['r3', record({ source: 'repair', lost: [B2] })],
      ]),
    );
    expect(book.empty).toBe(false);
    expect(book.excluded(P1, B2)?.source).toBe('check');
    expect(book.excluded(P2, B1)?.source).toBe('verify');
    expect(book.excluded(P2, B2)).toBeUndefined();
    expect(book.avoided(P2)).toBe(true);
    expect(book.touches(P2)).toBe(true);
    expect(book.lost(B2)?.source).toBe('repair');
    expect([...book.recordedPacks()].sort()).toEqual([P1, P2]);
    expect(new DamageBook().empty).toBe(true);
  });

  it('a damaged pack is avoided but its blobs are not left out', () => {
    const book = new DamageBook(new Map([['r', record({ damagedPacks: [P1] })]]));
    expect(book.avoided(P1)).toBe(true);
    expect(book.excluded(P1, B1)).toBeUndefined();
  });
});
