/** The clock approvals are judged and made by, checked against the newest audit entry. */
import { StopError } from '../errors.js';
import type { SealedObjects } from '../repository/slices.js';
import { lastAuditEntry } from './audit-store.js';

/** How far this machine's clock may lag the newest audit entry before it is not trusted. */
const CLOCK_TOLERANCE_MS = 60 * 1000;

/**
 * STOP CLOCK_SKEW when `now` is earlier than the newest audit entry: approvals are judged and made by the clock,
 * and a clock set back must not make an expired request open again.
 */
export async function checkClock(
  repo: SealedObjects & { readonly config: { readonly id: string } },
  now: Date,
): Promise<void> {
  const newest = await lastAuditEntry(repo);
  if (newest === undefined || Date.parse(newest.time) <= now.getTime() + CLOCK_TOLERANCE_MS) return;
  throw new StopError(
    'CLOCK_SKEW',
    `this machine's clock (${now.toISOString()}) is earlier than the newest audit entry (${newest.time})`,
    { hint: 'set the clock right (NTP), then run the command again; an expired approval never comes back' },
  );
}
