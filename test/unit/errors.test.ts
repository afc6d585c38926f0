import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError, CommsError, DigestMismatchError, ExitCode, NotFoundError, ProtocolError, VerificationError, exitCodeOf } from '../../src/errors.ts';

test('each error class carries its exit code and cause', () => {
  const cause = new Error('root');
  assert.equal(new VerificationError('v', { cause }).exitCode, ExitCode.VERIFICATION);
  assert.equal(new AuthError('a').exitCode, 3);
  assert.equal(new ProtocolError('p').exitCode, 4);
  assert.equal(new DigestMismatchError('d').exitCode, 4);
  assert.equal(new NotFoundError('n').exitCode, 5);
  assert.equal(new CommsError('c').exitCode, 1);
  assert.equal(new VerificationError('v', { cause }).cause, cause);
  assert.equal(exitCodeOf(new Error('plain')), 1);
  assert.equal(exitCodeOf(new NotFoundError('n')), 5);
  assert.equal(new DigestMismatchError('d').code, 'DIGEST_MISMATCH');
});
