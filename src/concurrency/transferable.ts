/**
 * Bytes on their way to a worker thread (WorkerPool.run's transfer list): moved, not copied, when the view owns
 * its whole ArrayBuffer (a buffer from Backend.load is the caller's alone); copied once otherwise (a slice of
 * Node's shared pool or of a larger buffer: detaching it would take its neighbours along). Either way the caller
 * must not use `data` afterwards.
 */
export function transferable(data: Uint8Array): { view: Uint8Array; transfer: ArrayBuffer[] } {
  if (data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
    return { view: new Uint8Array(data.buffer), transfer: [data.buffer] };
  }
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return { view: copy, transfer: [copy.buffer] };
}
