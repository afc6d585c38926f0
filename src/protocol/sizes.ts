/** Chunk arithmetic shared by the writer, the reader and the validator. */
import { UsageError } from '../errors.ts';

function checkSizes(totalBytes: number, chunkBytes: number): void {
  if (!Number.isSafeInteger(totalBytes) || totalBytes < 0) throw new UsageError(`total size must be a non-negative integer, got ${totalBytes}`);
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 0) throw new UsageError(`chunk size must be a non-negative integer, got ${chunkBytes}`);
  if (totalBytes > 0 && chunkBytes === 0) throw new UsageError('chunk size must be positive');
}

/** How many chunks `totalBytes` makes: ceil(total / chunkBytes); an empty payload has none. */
export function totalChunks(totalBytes: number, chunkBytes: number): number {
  checkSizes(totalBytes, chunkBytes);
  return totalBytes === 0 ? 0 : Math.ceil(totalBytes / chunkBytes);
}

/** The raw size of chunk `index`: chunkBytes, except the last, which holds the remainder. */
export function chunkRawSize(totalBytes: number, chunkBytes: number, index: number): number {
  const count = totalChunks(totalBytes, chunkBytes);
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) throw new UsageError(`chunk index ${index} is outside 0..${count - 1}`);
  return Math.min(chunkBytes, totalBytes - index * chunkBytes);
}

/** The `dockercomms.chunk_bytes` value v1.0 writes: the chunk size, or the total when smaller. */
export function effectiveChunkBytes(totalBytes: number, chunkBytes: number): number {
  checkSizes(totalBytes, chunkBytes);
  return Math.min(totalBytes, chunkBytes);
}
