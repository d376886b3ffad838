/**
 * Start a worker thread from a module next to the caller, both when running
 * built (dist/*.js) and from source (tests and tsx, where the module is a .ts
 * file Node cannot load without tsx's loader).
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Start `<name>.js` (or `<name>.ts` from source) in the directory of
 * `callerUrl` (the caller's import.meta.url).
 */
export function startWorker(
  callerUrl: string,
  name: string,
  options: Pick<WorkerOptions, 'workerData' | 'transferList' | 'resourceLimits'> = {},
): Worker {
  if (!callerUrl.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, callerUrl), options);
  // running from source: register tsx's loader inside the worker first
  const src = new URL(`./${name}.ts`, callerUrl).href;
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(src)}); })`;
  return new Worker(boot, { ...options, eval: true });
}
