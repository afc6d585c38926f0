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

test('every CommsError subclass defined in the library is exported from its entry point', async () => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const lib = (await import('../../src/index.ts')) as Record<string, unknown>;
  const src = join(import.meta.dirname, '..', '..', 'src');
  const defined: string[] = [];
  for (const e of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts') || e.parentPath.includes('/cli')) continue;
    for (const m of readFileSync(join(e.parentPath, e.name), 'utf8').matchAll(/^export class (\w+) extends (\w+)/gm)) defined.push(m[1]!);
  }
  const errors = defined.filter((name) => {
    const value = lib[name];
    return value === undefined ? /Error$/.test(name) : typeof value === 'function' && value.prototype instanceof CommsError;
  });
  const missing = errors.filter((name) => lib[name] === undefined && name !== 'RegistryHttpError');
  // RegistryHttpError is the server's HTTP answer, caught inside it; it never leaves an exported function.
  assert.deepEqual(missing, [], 'error classes thrown by the library but not exported from src/index.ts');
  assert.ok(errors.includes('KeyError') && errors.includes('TimeoutError'));
});
