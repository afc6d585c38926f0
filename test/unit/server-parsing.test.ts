/** Small parsers of the registry: Range headers, --addr, htpasswd + Basic auth, and the exposure rule. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { UsageError } from '../../src/errors.ts';
import { basicAuthenticator, dummyHashFor, parseHtpasswd } from '../../src/server/auth.ts';
import { parseRange } from '../../src/server/blobs.ts';
import { parseAddr } from '../../src/server/address.ts';
import { checkExposure } from '../../src/server/server.ts';

describe('parseRange', () => {
  it('reads one byte range against the blob size', () => {
    assert.deepEqual(parseRange('bytes=0-0', 10), { start: 0, end: 0 });
    assert.deepEqual(parseRange('bytes=3-', 10), { start: 3, end: 9 });
    assert.deepEqual(parseRange('bytes=-4', 10), { start: 6, end: 9 });
    assert.deepEqual(parseRange('bytes=-40', 10), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=5-500', 10), { start: 5, end: 9 });
  });
  it('is unsatisfiable past the end, and ignored (whole blob) when not a single byte range', () => {
    assert.equal(parseRange('bytes=10-', 10), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 10), 'unsatisfiable');
    for (const h of [undefined, 'bytes=1-2,4-5', 'items=1-2', 'bytes=5-1', 'bytes=-', 'nonsense']) assert.equal(parseRange(h, 10), undefined, String(h));
  });
});

describe('parseAddr', () => {
  it('reads host:port, [v6]:port and a bare host', () => {
    assert.deepEqual(parseAddr('127.0.0.1:5000'), { host: '127.0.0.1', port: 5000 });
    assert.deepEqual(parseAddr('localhost:0'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseAddr('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseAddr('0.0.0.0'), { host: '0.0.0.0', port: 5000 });
  });
  it('refuses what it cannot read with UsageError', () => {
    for (const a of [':5000', '::1:5000', '[::1', '[::1]x', 'h:70000', 'h:port', 'h:-1']) assert.throws(() => parseAddr(a), UsageError, a);
  });
});

describe('htpasswd and Basic auth', () => {
  const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

  it('accepts $2y$ (Apache) as $2a$, and checks passwords (with ":" in them)', async () => {
    const text = `# users\nann:${bcrypt.hashSync('pa:ss', 4).replace(/^\$2[ab]\$/, '$2y$')}\n\nbo:${bcrypt.hashSync('x', 4)}\n`;
    const auth = basicAuthenticator(parseHtpasswd(text));
    assert.equal(await auth.check(basic('ann', 'pa:ss')), true);
    assert.equal(await auth.check(basic('ann', 'pa:ss')), true, 'a second time (remembered) too');
    assert.equal(await auth.check(basic('bo', 'x')), true);
    for (const h of [undefined, basic('ann', 'pa'), basic('nobody', 'x'), 'Bearer x', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`]) {
      assert.equal(await auth.check(h), false, String(h));
    }
  });

  it('an unknown user is checked against a dummy hash of the same bcrypt cost as the real entries (no timing difference)', () => {
    const users = parseHtpasswd(`ann:${bcrypt.hashSync('a', 6)}\nbo:${bcrypt.hashSync('b', 6)}\ncy:${bcrypt.hashSync('c', 5)}\n`);
    assert.equal(bcrypt.getRounds(dummyHashFor(users)), 6, 'the cost most entries use');
    const tied = parseHtpasswd(`ann:${bcrypt.hashSync('a', 5)}\nbo:${bcrypt.hashSync('b', 7)}\n`);
    assert.equal(bcrypt.getRounds(dummyHashFor(tied)), 7, 'the higher cost when tied');
    const apache = parseHtpasswd(`ann:${bcrypt.hashSync('a', 8).replace(/^\$2[ab]\$/, '$2y$')}\n`);
    assert.equal(bcrypt.getRounds(dummyHashFor(apache)), 8);
  });

  it('refuses entries that are not bcrypt, and a file without users', () => {
    assert.throws(() => parseHtpasswd('u:$apr1$abc$defghijklmnopqrstuvwx'), UsageError);
    assert.throws(() => parseHtpasswd('u:{SHA}abcdef'), UsageError);
    assert.throws(() => parseHtpasswd('no colon here'), UsageError);
    assert.throws(() => parseHtpasswd('# only a comment\n'), UsageError);
  });
});

describe('checkExposure', () => {
  const tls = { cert: 'c.pem', key: 'k.pem' };
  it('allows loopback with nothing, and a public address with TLS and auth, or when told', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) checkExposure(host, {});
    checkExposure('0.0.0.0', { tls, htpasswd: 'h' });
    checkExposure('192.0.2.1', { allowInsecurePublic: true });
  });
  it('refuses a public address missing TLS or auth with UsageError INSECURE_LISTEN', () => {
    for (const opts of [{}, { tls }, { htpasswd: 'h' }]) {
      for (const host of ['0.0.0.0', '::', '192.0.2.1', 'example.com']) {
        assert.throws(
          () => checkExposure(host, opts),
          (err: unknown) => err instanceof UsageError && err.code === 'INSECURE_LISTEN',
          `${host} ${JSON.stringify(opts)}`,
        );
      }
    }
  });
});
