/**
 * send() reports progress as bytes are read and as they are uploaded to a real docker-registry,
 * not once per completed chunk: the CLI's progress line (bytes, rate, ETA) is drawn from these.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { send, type SendProgress } from '../../src/comms/send.ts';
import { openRemoteRepository } from '../../src/oci/remote/index.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const MiB = 1024 * 1024;

if (!requireTool('docker-registry')) {
  it('send progress', (t) => t.skip(skipMessage('docker-registry')));
} else {
  let registry: RegistryServer;
  let work: TempDir;
  before(async () => {
    registry = await startRegistry({ mode: 'plain' });
    work = await tempDir('comms-send-progress-');
  });
  after(async () => {
    await registry?.stop();
    await work?.cleanup();
  });

  it('reports bytes read piece by piece and payload uploaded as the upload goes, ending at the total', async () => {
    // Random bytes do not compress: one 24 MiB chunk, uploaded in several requests.
    const size = 24 * MiB;
    const file = join(work.path, 'payload.bin');
    await writeFile(file, randomBytes(size));
    const events: SendProgress[] = [];
    const repository = openRemoteRepository(`${registry.host}/progress/box`, { plainHttp: true });
    const r = await send({
      unsigned: true,
      repository,
      recipient: 'bob',
      sender: 'alice',
      input: { path: file },
      chunkBytes: size,
      parallel: 1,
      onProgress: (p) => events.push(p),
    });
    assert.equal(r.chunks, 1);
    const beforeUpload = events.filter((e) => e.bytesUploaded === 0);
    assert.ok(
      beforeUpload.some((e) => e.bytesRead > 0 && e.bytesRead < size),
      'bytes read are reported before the chunk is complete',
    );
    assert.ok(
      events.some((e) => e.payloadBytesUploaded > 0 && e.payloadBytesUploaded < size),
      'upload progress is reported while the chunk uploads',
    );
    for (const e of events) assert.ok(e.payloadBytesUploaded <= e.bytesRead, 'nothing is uploaded before it is read');
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.bytesRead >= events[i - 1]!.bytesRead);
    const last = events.at(-1)!;
    assert.equal(last.bytesRead, size);
    assert.equal(last.payloadBytesUploaded, size);
    assert.equal(last.totalBytes, size);
  });
}
