/**
 * The client side of the serve-throughput benchmark, run as its own process: pushes or pulls a
 * list of blobs with comms' remote client (PARALLEL at once). Uploads are HEAD + POST + PUT for
 * blobs up to 4 MiB and HEAD + POST + 8 MiB PATCHes + PUT above; downloads are one GET each,
 * with the digest verified as the bytes stream (the bytes are then dropped). Prints
 * `{"requests","ms"}`: the HTTP exchanges and the transfer time, start-up excluded.
 *   node serve-client.ts push|pull HOST/REPO PARALLEL BLOBS_JSON
 * BLOBS_JSON: [{ "path", "digest", "size" }, ...]
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { openRemoteRepository } from '../../src/oci/remote/index.ts';
import { forEachLimit } from '../../src/util/pool.ts';

interface Blob {
  path: string;
  digest: string;
  size: number;
}

const [mode, ref, par, list] = process.argv.slice(2) as [string, string, string, string];
const blobs = JSON.parse(await readFile(list, 'utf8')) as Blob[];
let requests = 0;
// Timed here, so the figure leaves out node's start-up and module loading.
const start = performance.now();
const repo = openRemoteRepository(ref, { plainHttp: true, onRequest: () => requests++ });
await forEachLimit(blobs, Number(par), async (b) => {
  const desc = { mediaType: 'application/octet-stream', digest: b.digest, size: b.size };
  if (mode === 'push') {
    const r = await repo.push(desc, createReadStream(b.path));
    if (r.skipped) throw new Error(`${b.digest} was already there: the benchmark needs a fresh repository`);
  } else {
    const s = await repo.fetch(desc);
    for await (const _ of s) {
      // drop the bytes; the stream verifies the digest before it ends
    }
  }
});
process.stdout.write(`${JSON.stringify({ requests, ms: performance.now() - start })}\n`);
