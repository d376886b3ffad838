/**
 * Opening a repository from a location string: the library's front door
 * (the CLI calls these too).
 */
import type { Backend } from '../backend/backend.js';
import { openBackend } from '../backend/open.js';
import { Repository, type InitOptions, type OpenOptions } from './repository.js';

/** A repository given by its location (a local path or `local:PATH`) or by an open Backend. */
export type RepositoryLocation = string | Backend;

function backendOf(location: RepositoryLocation): Backend {
  return typeof location === 'string' ? openBackend(location) : location;
}

/** Create a repository at an empty location (REPO_NOT_EMPTY otherwise). */
export async function initRepository(
  location: RepositoryLocation,
  password: string,
  opts?: InitOptions,
): Promise<Repository> {
  return Repository.init(backendOf(location), password, opts);
}

/**
 * Open a repository (REPO_NOT_FOUND, REPO_FORMAT_UNSUPPORTED, STOP
 * PERMISSION_DENIED, or STOP CHECKSUM_MISMATCH when its keys or config are
 * damaged: see Repository.open). Damaged key files skipped are told to `opts.reporter`.
 */
export async function openRepository(
  location: RepositoryLocation,
  password: string,
  opts?: OpenOptions,
): Promise<Repository> {
  return Repository.open(backendOf(location), password, opts);
}
