/**
 * A Backend wrapper that injects faults into a real backend, for tests and for
 * demonstrating failure handling (restic's `mock` and `dryrun` backends play the
 * same role). Faults are configured by chaining:
 *
 *   new FaultInjectingBackend(local)
 *     .failNth('save', 3, new Error('boom'))   // the 3rd save from now throws
 *     .flipBitOnLoad((h) => h.type === 'data') // every matching load is damaged
 *
 * Stored data is never damaged: load faults change only the returned copy.
 */

import { randomInt } from 'node:crypto';
import { fsError } from '../errors.js';
import type { Backend, ByteRange, Bytes, ObjectHandle, ObjectInfo, ObjectType } from './backend.js';

export type BackendMethod =
  | 'create'
  | 'isRepository'
  | 'save'
  | 'saveNew'
  | 'load'
  | 'stat'
  | 'list'
  | 'remove'
  | 'close';

/** Chooses which loads a load fault applies to. */
export type LoadPredicate = (h: ObjectHandle, range: ByteRange | undefined) => boolean;

/** Where flipBitOnLoad flips; omitted fields are chosen at random per load. */
export interface BitPosition {
  /** Byte offset in the returned buffer (taken modulo its length). */
  offset?: number;
  /** Bit within that byte, 0 (least significant) to 7. */
  bit?: number;
}

interface NthRule {
  method: BackendMethod;
  remaining: number;
  error: unknown;
}

type LoadFault = (h: ObjectHandle, range: ByteRange | undefined, data: Buffer) => Buffer;

export class FaultInjectingBackend implements Backend {
  private readonly nthRules: NthRule[] = [];
  private readonly loadFaults: LoadFault[] = [];
  private saveErrno: string | undefined;
  private savePredicate: (h: ObjectHandle) => boolean = () => true;

  constructor(readonly inner: Backend) {}

  get location(): string {
    return this.inner.location;
  }

  /**
   * Make the `n`th call (1-based, counted from now) to `method` throw `error`
   * instead of reaching the wrapped backend. Other calls pass through. For `list`
   * the call is counted when list() is called and the error surfaces on iteration.
   */
  failNth(method: BackendMethod, n: number, error: unknown): this {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`failNth: n must be a positive integer, got ${n}`);
    this.nthRules.push({ method, remaining: n, error });
    return this;
  }

  /** Flip exactly one bit in what every matching load returns (empty results are left alone). */
  flipBitOnLoad(predicate: LoadPredicate, at: BitPosition = {}): this {
    this.loadFaults.push((h, range, data) => {
      if (!predicate(h, range) || data.length === 0) return data;
      const offset = (at.offset ?? randomInt(data.length)) % data.length;
      const bit = at.bit ?? randomInt(8);
      data[offset] = (data[offset] ?? 0) ^ (1 << bit);
      return data;
    });
    return this;
  }

  /** Return only the first `keep` bytes (default: half) of what every matching load returns. */
  truncateOnLoad(predicate: LoadPredicate, keep?: number): this {
    this.loadFaults.push((h, range, data) =>
      predicate(h, range) ? data.subarray(0, keep ?? Math.floor(data.length / 2)) : data,
    );
    return this;
  }

  /**
   * Make every save fail as a real disk would with this errno (e.g. 'ENOSPC' gives a
   * FoleBackupError with code NO_SPACE). Nothing reaches the wrapped backend, so no
   * object is stored. With `predicate`, only matching saves fail (e.g. packs only).
   * Lasts until clearFaults().
   */
  failSaveWith(errno: string, predicate: (h: ObjectHandle) => boolean = () => true): this {
    this.saveErrno = errno;
    this.savePredicate = predicate;
    return this;
  }

  /** Remove every configured fault; pending failNth counts are forgotten. */
  clearFaults(): this {
    this.nthRules.length = 0;
    this.loadFaults.length = 0;
    this.saveErrno = undefined;
    return this;
  }

  async create(): Promise<void> {
    this.injectNth('create');
    return this.inner.create();
  }

  async isRepository(): Promise<boolean> {
    this.injectNth('isRepository');
    return this.inner.isRepository();
  }

  async save(h: ObjectHandle, data: Bytes): Promise<void> {
    this.injectSave('save', h);
    return this.inner.save(h, data);
  }

  /** Create-only save: the same injected faults as save (a full disk fails both). */
  async saveNew(h: ObjectHandle, data: Bytes): Promise<void> {
    this.injectSave('saveNew', h);
    return this.inner.saveNew(h, data);
  }

  private injectSave(method: 'save' | 'saveNew', h: ObjectHandle): void {
    this.injectNth(method);
    if (this.saveErrno !== undefined && this.savePredicate(h)) {
      const cause = Object.assign(new Error(`${this.saveErrno}: injected fault`), { code: this.saveErrno });
      throw fsError('write', `${this.location}/${h.type === 'config' ? 'config' : `${h.type}/${h.name}`}`, cause);
    }
  }

  async load(h: ObjectHandle, range?: ByteRange): Promise<Buffer> {
    this.injectNth('load');
    // Copy so the faults can never touch a buffer the wrapped backend still holds.
    let data: Buffer = Buffer.from(await this.inner.load(h, range));
    for (const fault of this.loadFaults) data = fault(h, range, data);
    return data;
  }

  async stat(h: ObjectHandle): Promise<ObjectInfo> {
    this.injectNth('stat');
    return this.inner.stat(h);
  }

  list(type: ObjectType): AsyncIterable<ObjectInfo> {
    const error = this.takeNth('list');
    const inner = this.inner;
    return (async function* () {
      if (error !== undefined) throw error.error;
      yield* inner.list(type);
    })();
  }

  async remove(h: ObjectHandle): Promise<void> {
    this.injectNth('remove');
    return this.inner.remove(h);
  }

  async close(): Promise<void> {
    this.injectNth('close');
    return this.inner.close();
  }

  /** Count this call against every rule for `method`; return the rule that fires, if any. */
  private takeNth(method: BackendMethod): NthRule | undefined {
    let fired: NthRule | undefined;
    for (const rule of [...this.nthRules]) {
      if (rule.method !== method) continue;
      rule.remaining -= 1;
      if (rule.remaining > 0) continue;
      // A rule fires once and is then forgotten.
      this.nthRules.splice(this.nthRules.indexOf(rule), 1);
      fired ??= rule;
    }
    return fired;
  }

  private injectNth(method: BackendMethod): void {
    const fired = this.takeNth(method);
    if (fired !== undefined) throw fired.error;
  }
}
