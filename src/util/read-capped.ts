/** Reading a whole body into memory, never more than a cap: how every manifest, index, token or request body is read. */

/**
 * The bytes of `source`, or undefined as soon as they exceed `cap` (nothing more is read). Leaving
 * the loop early destroys a Readable iterated directly; pass `req.iterator({ destroyOnReturn: false })`
 * to keep a request open for an answer.
 */
export async function readCapped(source: AsyncIterable<unknown>, cap: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += buf.length;
    if (total > cap) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks, total);
}
