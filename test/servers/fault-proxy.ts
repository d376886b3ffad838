/**
 * A TCP proxy between a client and a real test server (Swift's s3api, sshd, serve-repo), for fault tests at the
 * transport level: TLS and SSH pass through it untouched, so client and server are the real ones and only the
 * network misbehaves. It can
 *   - cut a connection once N more bytes have crossed it in one direction: toward the server that is a request
 *     dropped mid-upload, toward the client a reply cut short (a truncated response);
 *   - reset the next connections as soon as they are accepted (a server that is restarting or overloaded);
 *   - deliver the server's bytes slowly, in small pieces with a pause before each (a slow server or link).
 *
 *   const proxy = await startFaultProxy(server.port);
 *   proxy.cutAfter('toServer', 1 << 20, 2);   // twice, a connection is cut 1 MiB into what the client sends
 *   … the client connects to 127.0.0.1:proxy.port …
 *   expect(proxy.fired.cuts).toBe(2);
 *   await proxy.close();
 */
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { sleep } from '../../src/concurrency/sleep.js';

type Direction = 'toServer' | 'toClient';

export interface FaultProxy {
  /** The proxy's port on 127.0.0.1: clients connect here instead of the server's. */
  readonly port: number;
  /** What the faults did so far, so a test can prove they happened. */
  readonly fired: { cuts: number; resets: number; connections: number };
  /** Bytes carried so far each way, over all connections (a test waits for an upload to be under way). */
  readonly carried: Record<Direction, number>;
  /**
   * Cut the connection that carries the `bytes`-th byte (counted from now, over all connections) in `direction`:
   * the bytes before it are delivered, then both sides are reset. Armed again after each cut, `times` times.
   */
  cutAfter(direction: Direction, bytes: number, times?: number): void;
  /** Reset the next `count` connections as soon as they are accepted, before a byte passes (Infinity: all). */
  resetNew(count: number): void;
  /** Deliver what the server sends in pieces of at most `pieceBytes`, each after a pause of `delayMs`. */
  slow(delayMs: number, pieceBytes?: number): void;
  /** Reset every open connection now (a client keeping connections alive must open new ones). */
  dropAll(): void;
  /** Remove every fault; connections open stay open. */
  clear(): void;
  /** Stop listening and reset every connection. */
  close(): Promise<void>;
}

interface Cut {
  remaining: number;
  bytes: number;
  times: number;
}

/** A proxy on a free port of 127.0.0.1 to `upstreamPort` on 127.0.0.1. */
export async function startFaultProxy(upstreamPort: number): Promise<FaultProxy> {
  const cuts: Record<Direction, Cut | undefined> = { toServer: undefined, toClient: undefined };
  let resets = 0;
  let slowness: { delayMs: number; pieceBytes: number } | undefined;
  const fired = { cuts: 0, resets: 0, connections: 0 };
  const carried: Record<Direction, number> = { toServer: 0, toClient: 0 };
  const open = new Set<{ client: Socket; server: Socket }>();

  const reset = (pair: { client: Socket; server: Socket }): void => {
    open.delete(pair);
    for (const s of [pair.client, pair.server]) if (!s.destroyed) s.resetAndDestroy();
  };

  /**
   * How many bytes of a `length`-byte chunk going `direction` pass before a cut (`length` when none is due), and
   * whether the connection is cut after them.
   */
  const take = (direction: Direction, length: number): { pass: number; cut: boolean } => {
    const cut = cuts[direction];
    if (cut === undefined || length < cut.remaining) {
      if (cut !== undefined) cut.remaining -= length;
      return { pass: length, cut: false };
    }
    const pass = cut.remaining;
    cut.times -= 1;
    cut.remaining = cut.bytes;
    if (cut.times <= 0) cuts[direction] = undefined;
    fired.cuts += 1;
    return { pass, cut: true };
  };

  /** Carry `from`'s bytes to `to` one chunk at a time, in order, with the faults of `direction` applied. */
  const forward = (pair: { client: Socket; server: Socket }, direction: Direction): void => {
    const [from, to] = direction === 'toServer' ? [pair.client, pair.server] : [pair.server, pair.client];
    let queue = Promise.resolve();
    const deliver = async (chunk: Buffer): Promise<void> => {
      const { pass, cut } = take(direction, chunk.length);
      carried[direction] += pass;
      let rest = chunk.subarray(0, pass);
      const slow = direction === 'toClient' ? slowness : undefined;
      while (rest.length > 0 && !to.destroyed) {
        const piece = slow === undefined ? rest : rest.subarray(0, slow.pieceBytes);
        rest = rest.subarray(piece.length);
        if (slow !== undefined) await sleep(slow.delayMs);
        // once() rejects on the socket's error, which its own handler takes care of
        if (!to.write(piece) && !to.destroyed)
          await Promise.race([once(to, 'drain'), once(to, 'close')]).catch(() => undefined);
      }
      if (cut) reset(pair);
    };
    from.on('data', (chunk: Buffer) => {
      from.pause();
      queue = queue
        .then(() => deliver(chunk))
        .then(
          () => void from.resume(),
          () => reset(pair),
        );
    });
    from.on('end', () => {
      queue = queue.then(() => void to.end());
    });
  };

  const listener = createServer((client) => {
    fired.connections += 1;
    if (resets > 0) {
      resets -= 1;
      fired.resets += 1;
      client.on('error', () => undefined);
      client.resetAndDestroy();
      return;
    }
    const server = connect(upstreamPort, '127.0.0.1');
    const pair = { client, server };
    open.add(pair);
    client.pause();
    server.once('connect', () => client.resume());
    for (const s of [client, server]) {
      // a reset on one side is passed on to the other, as a dropped link would show it to both
      s.on('error', () => reset(pair));
      s.on('close', () => {
        open.delete(pair);
        (s === client ? server : client).destroy();
      });
    }
    forward(pair, 'toServer');
    forward(pair, 'toClient');
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(0, '127.0.0.1', () => resolve());
  });
  const address = listener.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  const clear = (): void => {
    cuts.toServer = undefined;
    cuts.toClient = undefined;
    resets = 0;
    slowness = undefined;
  };
  const dropAll = (): void => {
    for (const pair of [...open]) reset(pair);
  };
  return {
    port,
    fired,
    carried,
    cutAfter(direction, bytes, times = 1) {
      cuts[direction] = { remaining: bytes, bytes, times };
    },
    resetNew(count) {
      resets = count;
    },
    slow(delayMs, pieceBytes = 16 * 1024) {
      slowness = { delayMs, pieceBytes };
    },
    dropAll,
    clear,
    close() {
      clear();
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      dropAll();
      return closed;
    },
  };
}
