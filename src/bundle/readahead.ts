// Positioned reads one chunk ahead: the next chunk is read (libuv's thread
// pool) while the caller hashes or writes this one. Two buffers take turns, so
// each chunk stays valid until the one after it is taken. Used where a whole
// entry is read front to back: the tar writer's copies, the reader's verify,
// and the bytes a split bundle's verifying pass reads for its part hashes
// alone. At most one read is in flight, always the next one: a source that
// must see its reads in order (the pass) gets them in order.
const CHUNK = 1024 * 1024;

export interface PositionedRead {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** Bytes [at, at + size) of `src`; a source that ends early is `short(bytesGot)`. */
export async function* readAhead(src: PositionedRead, at: number, size: number, short: (got: number) => Error, buffers: [Buffer, Buffer] = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)]): AsyncGenerator<Buffer> {
  const readAt = (buf: Buffer, pos: number) => {
    const p = src.read(buf, 0, Math.min(buf.length, size - pos), at + pos).then(({ bytesRead }) => buf.subarray(0, bytesRead));
    p.catch(() => undefined); // awaited below; a failure meanwhile is not unhandled
    return p;
  };
  let pos = 0;
  let turn = 0;
  let next = size > 0 ? readAt(buffers[0], 0) : undefined;
  while (next) {
    const chunk = await next;
    if (chunk.length === 0) throw short(pos);
    pos += chunk.length;
    turn ^= 1;
    next = pos < size ? readAt(buffers[turn as 0 | 1], pos) : undefined;
    yield chunk;
  }
}
