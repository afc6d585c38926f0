import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { receive } from '../../src/comms/receive.ts';
import { send } from '../../src/comms/send.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { spoolFileChunk, writeChunks } from '../../src/protocol/chunk-writer.ts';

test('a chunk compressed from its byte range of the file equals the one the sequential writer makes', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-par-'));
  try {
    const file = path.join(dir, 'payload.bin');
    // Mixed content: random and repetitive runs, so both codecs do real work.
    const parts: Buffer[] = [];
    for (let i = 0; i < 40; i++) parts.push(i % 3 === 0 ? randomBytes(20_000) : Buffer.alloc(20_000, `line ${i} of text\n`));
    const data = Buffer.concat(parts);
    await writeFile(file, data);
    for (const compression of ['gzip', 'zstd'] as const) {
      const options = { chunkBytes: 300_000, compression, spoolDir: dir };
      const sequential: string[] = [];
      for await (const c of writeChunks(createReadStream(file), { ...options, totalBytes: data.length })) {
        sequential.push(c.descriptor.digest);
        await c.dispose();
      }
      const ranged = await Promise.all(
        sequential.map(async (_, i) => {
          const c = await spoolFileChunk(file, i, { ...options, totalBytes: data.length });
          await c.dispose();
          return c.descriptor.digest;
        }),
      );
      assert.equal(sequential.length, 3);
      assert.deepEqual(ranged, sequential, `${compression}: same layer digests`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a file sent with parallel compression arrives intact; a file that changes size during the send is refused', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-par-'));
  try {
    const file = path.join(dir, 'big.bin');
    const data = randomBytes(1_000_000);
    await writeFile(file, data);
    const repository = await OciLayout.open(path.join(dir, 'mb'), { create: true });
    const sent = await send({
      unsigned: true,
      repository,
      recipient: 'bob',
      sender: 'alice',
      input: { path: file },
      chunkBytes: 100_000,
      parallel: 4,
      compression: 'zstd',
    });
    assert.equal(sent.chunks, 10);
    const got = await receive({ repository, me: 'bob', outDir: path.join(dir, 'in'), verify: false });
    const out = await readFile(got.messages[0]!.path);
    assert.equal(createHash('sha256').update(out).digest('hex'), createHash('sha256').update(data).digest('hex'));

    // Grow the file while chunks are being compressed: the send must fail, not publish a message.
    let grown = false;
    await assert.rejects(
      send({
        unsigned: true,
        repository,
        recipient: 'bob',
        sender: 'alice',
        input: { path: file },
        chunkBytes: 100_000,
        parallel: 2,
        onProgress: () => {
          if (!grown) {
            grown = true;
            appendFileSync(file, randomBytes(10)); // synchronous: the file has grown before the send goes on
          }
        },
      }),
      (e: unknown) => (e as { code?: string }).code === 'INPUT_CHANGED',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
