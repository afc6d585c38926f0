/**
 * A blob download as a verified stream: bytes are hashed and counted as they flow (the stream
 * fails with DigestMismatchError, exit 4, on any difference). When the connection drops midway
 * the download resumes with `Range: bytes=<received>-` where the server said `Accept-Ranges:
 * bytes` (the same hasher continues), or starts over and skips what was already delivered;
 * either way a bounded number of times.
 */
import { Readable, pipeline } from 'node:stream';
import { AbortError, DigestMismatchError, ProtocolError } from '../../errors.ts';
import type { Descriptor } from '../descriptor.ts';
import { VerifyingStream } from '../digest.ts';
import type { FetchOptions } from '../target.ts';
import { networkError } from './error-map.ts';
import { discard, header, type HttpResponse } from './http.ts';
import type { RepoIO } from './repo-io.ts';
import { backoffDelay, isTimeoutError, isTransientNetworkError, MAX_STALLS } from './retry.ts';
import { sleep } from '../../util/abort.ts';

/** `bytes <start>-<end>/<total|*>` → start, or undefined when unreadable. */
export function contentRangeStart(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value);
  return m ? Number(m[1]) : undefined;
}

export async function downloadBlob(io: RepoIO, desc: Descriptor, options: FetchOptions = {}): Promise<Readable> {
  const { signal } = options;
  const operation = `fetch blob ${desc.digest}`;
  const url = await io.url(`blobs/${desc.digest}`, signal);
  const get = (from: number): Promise<HttpResponse> =>
    io.send(
      {
        method: 'GET',
        url,
        headers: from > 0 ? { range: `bytes=${from}-` } : {},
        followRedirects: true,
        scopes: io.scopes('pull'),
        signal,
      },
      operation,
    );

  const first = await get(0);
  if (first.status !== 200) throw await io.fail(first, operation);
  const length = header(first, 'content-length');
  if (length !== undefined && Number(length) !== desc.size) {
    await discard(first);
    throw new DigestMismatchError(`${operation}: ${io.registry} announced ${length} bytes, the descriptor says ${desc.size}`, {
      registry: io.registry,
    });
  }
  const resumable = header(first, 'accept-ranges')?.trim().toLowerCase() === 'bytes';

  async function* bytes(): AsyncGenerator<Buffer> {
    let res = first;
    let received = 0;
    let skip = 0;
    let resumes = 0;
    let stalls = 0;
    try {
      for (;;) {
        try {
          for await (const chunk of res.body) {
            let buf = chunk as Buffer;
            if (skip > 0) {
              if (buf.length <= skip) {
                skip -= buf.length;
                continue;
              }
              buf = buf.subarray(skip);
              skip = 0;
            }
            received += buf.length;
            options.onProgress?.(received);
            yield buf;
          }
          return;
        } catch (err) {
          if (signal?.aborted) throw new AbortError(`${operation}: aborted`, { cause: signal.reason, registry: io.registry });
          // Everything arrived (the verifier judges it), or the failure is not a dropped connection,
          // or the body went silent for the idle timeout once already (the silence is bounded).
          const stalled = isTimeoutError(err) && ++stalls >= MAX_STALLS;
          if (received >= desc.size || !isTransientNetworkError(err) || stalled || resumes + 1 >= io.retry.maxAttempts) {
            throw networkError(err, { registry: io.registry, repository: io.repository, operation, timeoutMs: io.timeoutMs }, signal);
          }
        }
        resumes++;
        res.body.destroy();
        await sleep(backoffDelay(resumes, io.retry), signal);
        res = await get(resumable ? received : 0);
        if (res.status === 206) {
          const start = contentRangeStart(header(res, 'content-range'));
          if (start !== received) {
            await discard(res);
            throw new ProtocolError(`${operation}: asked ${io.registry} to resume at byte ${received}, it answered from ${start ?? 'an unreadable range'}`, {
              code: 'RANGE_MISMATCH',
              registry: io.registry,
            });
          }
          skip = 0;
        } else if (res.status === 200) {
          // No range support: the whole blob again, minus what the caller already has.
          skip = received;
        } else {
          throw await io.fail(res, operation);
        }
      }
    } finally {
      res.body.destroy();
    }
  }

  const verifier = new VerifyingStream(desc.digest, desc.size);
  // pipeline carries a source failure into the verifier, and a consumer that stops reading
  // (destroys the verifier) into the generator, which then releases the connection.
  pipeline(Readable.from(bytes(), { objectMode: false }), verifier, () => {});
  return verifier;
}
