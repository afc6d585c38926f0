/**
 * One stage of the send path, run alone in its own process (so GNU time reports its CPU and
 * peak RSS): `chunks` runs comms' chunk writer over the payload into spool files (as send does,
 * or with the payload size given up front); `push` uploads spooled layers with comms' remote
 * client, --parallel at once.
 *   node stage-child.ts chunks FILE gzip|zstd CHUNK_BYTES SPOOL_DIR known|unknown keep|drop
 *   node stage-child.ts push HOST/REPO PARALLEL SPOOL_DIR
 * and two probes of node:zlib alone, to size the effect of buffer sizes (what comms could change):
 *   node stage-child.ts compress FILE gzip|zstd READ_BYTES ZLIB_CHUNK_BYTES
 *     (the payload through one compressor and a sha256 tap into nothing, read READ_BYTES at a time)
 *   node stage-child.ts decompress gzip|zstd ZLIB_CHUNK_BYTES OUT_FILE|- LAYER...
 *     (each layer through a decompressor; output written at its offset with one awaited
 *     FileHandle.write per output piece, as comms' materialiser does, or dropped with -)
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { open, readFile, stat, writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import path from 'node:path';
import { writeChunks } from '../../src/protocol/chunk-writer.ts';
import { openRemoteRepository } from '../../src/oci/remote/index.ts';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { forEachLimit } from '../../src/util/pool.ts';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'chunks') {
  const [file, comp, chunk, spool, known, keep] = args as [string, 'gzip' | 'zstd', string, string, string, string];
  const size = (await stat(file)).size;
  const layers: { descriptor: Descriptor; path: string }[] = [];
  for await (const c of writeChunks(createReadStream(file), {
    chunkBytes: Number(chunk),
    compression: comp,
    spoolDir: spool,
    ...(known === 'known' ? { totalBytes: size } : {}),
  })) {
    if (keep === 'keep') layers.push({ descriptor: c.descriptor, path: c.path });
    else await c.dispose();
  }
  if (keep === 'keep') await writeFile(path.join(spool, 'layers.json'), JSON.stringify(layers));
} else if (mode === 'push') {
  const [ref, par, spool] = args as [string, string, string];
  const layers = JSON.parse(await readFile(path.join(spool, 'layers.json'), 'utf8')) as { descriptor: Descriptor; path: string }[];
  const repo = openRemoteRepository(ref);
  await forEachLimit(layers, Number(par), async (l) => {
    await repo.push(l.descriptor, createReadStream(l.path));
  });
} else if (mode === 'compress') {
  const [file, comp, readBytes, zchunk] = args as [string, 'gzip' | 'zstd', string, string];
  const chunkSize = Number(zchunk);
  const z =
    comp === 'gzip'
      ? zlib.createGzip({ level: 6, chunkSize })
      : zlib.createZstdCompress({ chunkSize, params: { [zlib.constants.ZSTD_c_compressionLevel]: 3, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(file, { highWaterMark: Number(readBytes) }),
    z,
    new Writable({
      write(c: Buffer, _e, cb) {
        hash.update(c);
        cb();
      },
    }),
  );
} else if (mode === 'decompress') {
  const [comp, zchunk, outFile, ...layers] = args as [string, string, string, ...string[]];
  const chunkSize = Number(zchunk);
  const fh = outFile === '-' ? undefined : await open(outFile, 'w');
  let pos = 0;
  for (const layer of layers) {
    const z = comp === 'gzip' ? zlib.createGunzip({ chunkSize }) : zlib.createZstdDecompress({ chunkSize });
    await pipeline(
      createReadStream(layer),
      z,
      new Writable({
        write(c: Buffer, _e, cb) {
          if (fh === undefined) return cb();
          fh.write(c, 0, c.length, pos).then(({ bytesWritten }) => {
            pos += bytesWritten;
            cb();
          }, cb);
        },
      }),
    );
  }
  await fh?.close();
} else {
  throw new Error(`unknown stage ${mode}`);
}
