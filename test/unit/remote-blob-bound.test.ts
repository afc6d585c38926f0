/**
 * The digest-verifying stream bounds a blob by its descriptor's size while streaming: a registry
 * that answers a 1 KiB blob with an endless chunked body (no Content-Length to refuse up front)
 * gets at most 1 KiB through to the reader, then a DigestMismatchError (exit 4), and the download
 * ends instead of reading (and hashing) forever.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DigestMismatchError } from '../../src/errors.ts';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { startHostileRegistry } from '../support/hostile-registry.ts';

test('an endless chunked body for a 1 KiB descriptor fails after at most 1 KiB reached the reader', async () => {
  const stand = await startHostileRegistry({ endlessBlobs: true });
  const client = new RegistryClient({ plainHttp: true, retry: { maxAttempts: 1 } });
  const repo = client.repository(`${stand.host}/mbox`);
  try {
    const desc = { mediaType: 'application/octet-stream', digest: `sha256:${'1'.repeat(64)}`, size: 1024 };
    const stream = await repo.fetch(desc);
    let delivered = 0;
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) {
          delivered += (chunk as Buffer).length;
          // Unbounded: stop reading here, so that the test fails instead of reading forever.
          if (delivered > 1024) assert.fail(`${delivered} bytes reached the reader of a 1024-byte blob`);
        }
      })(),
      (e: unknown) => e instanceof DigestMismatchError && e.exitCode === 4 && /larger than its descriptor's size 1024/.test(e.message),
    );
  } finally {
    await client.close();
    await stand.close();
  }
});
