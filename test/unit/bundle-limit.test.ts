/**
 * One size limit for a signature bundle: the protocol refuses a bundle layer above it before it is
 * fetched, and trust refuses bundle bytes above the same limit before parsing them.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { VerificationError } from '../../src/errors.ts';
import { MAX_BUNDLE_BYTES } from '../../src/protocol/constants.ts';
import { MAX_BUNDLE_BYTES as VALIDATOR_LIMIT } from '../../src/protocol/validate.ts';
import { verifyMessageBundle } from '../../src/trust/verify.ts';
import { TEST_PUB } from '../support/cli.ts';
import { readFile } from 'node:fs/promises';

test('trust refuses bundle bytes over the protocol limit before parsing them', async () => {
  assert.equal(VALIDATOR_LIMIT, MAX_BUNDLE_BYTES);
  const manifest = new TextEncoder().encode('{"schemaVersion":2}');
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const oversized = new Uint8Array(MAX_BUNDLE_BYTES + 1).fill(0x20);
  await assert.rejects(verifyMessageBundle(oversized, manifest, digest, { trustedKeys: [await readFile(TEST_PUB, 'utf8')] }), (err: unknown) => {
    assert.ok(err instanceof VerificationError);
    assert.equal(err.code, 'BUNDLE_MALFORMED');
    assert.match(err.message, new RegExp(`limit ${MAX_BUNDLE_BYTES}\\)`));
    return true;
  });
});
