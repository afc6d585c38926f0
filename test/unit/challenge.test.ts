import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidReferenceError, ProtocolError, UsageError } from '../../src/errors.ts';
import { parseWWWAuthenticate, scopeFor } from '../../src/oci/auth/challenge.ts';

test('parses the bearer challenges GHCR, Docker Hub, Harbor and distribution send', () => {
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/mailbox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:acme/mailbox:pull' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/ubuntu:pull' } },
  ]);
  // distribution's token-auth example: two actions in one scope (a comma inside quotes) and an error.
  assert.deepEqual(
    parseWWWAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push",error="insufficient_scope"',
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:samalba/my-app:pull,push',
          error: 'insufficient_scope',
        },
      },
    ],
  );
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="https://harbor.example.com/service/token",service="harbor-registry"'), [
    { scheme: 'bearer', params: { realm: 'https://harbor.example.com/service/token', service: 'harbor-registry' } },
  ]);
});

test('parses basic challenges from distribution (htpasswd) and ECR', () => {
  assert.deepEqual(parseWWWAuthenticate('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  assert.deepEqual(parseWWWAuthenticate('Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"'), [
    { scheme: 'basic', params: { realm: 'https://123456789012.dkr.ecr.us-east-1.amazonaws.com/', service: 'ecr.amazonaws.com' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Basic'), [{ scheme: 'basic', params: {} }]);
});

test('several challenges in one header, escapes and commas inside quoted strings (RFC 7235 example)', () => {
  assert.deepEqual(parseWWWAuthenticate('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'), [
    { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
    { scheme: 'basic', params: { realm: 'simple' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Bearer realm="a, b=c, Basic d" , error="x\\\\y"'), [
    { scheme: 'bearer', params: { realm: 'a, b=c, Basic d', error: 'x\\y' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Basic realm="r", Bearer realm="https://t/token", service="s"'), [
    { scheme: 'basic', params: { realm: 'r' } },
    { scheme: 'bearer', params: { realm: 'https://t/token', service: 's' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Basic, Bearer realm="x"'), [
    { scheme: 'basic', params: {} },
    { scheme: 'bearer', params: { realm: 'x' } },
  ]);
});

test('token68 challenges, with and without padding, beside param challenges', () => {
  assert.deepEqual(parseWWWAuthenticate('Negotiate YWJjZA=='), [{ scheme: 'negotiate', params: {}, token68: 'YWJjZA==' }]);
  assert.deepEqual(parseWWWAuthenticate('Negotiate abc=, Basic realm="x"'), [
    { scheme: 'negotiate', params: {}, token68: 'abc=' },
    { scheme: 'basic', params: { realm: 'x' } },
  ]);
  assert.deepEqual(parseWWWAuthenticate('Foo a-b.c_d~e+f/g'), [{ scheme: 'foo', params: {}, token68: 'a-b.c_d~e+f/g' }]);
});

test('scheme and parameter names are case-insensitive; whitespace around = is allowed; the first duplicate wins', () => {
  assert.deepEqual(parseWWWAuthenticate('BEARER Realm = "x" ,SERVICE=y,realm="z"'), [{ scheme: 'bearer', params: { realm: 'x', service: 'y' } }]);
});

test('unquoted values such as a bare realm URL are accepted', () => {
  assert.deepEqual(parseWWWAuthenticate('Bearer realm=https://auth.example.com/token,service=registry.example.com'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example.com/token', service: 'registry.example.com' } },
  ]);
});

test('a parameter named __proto__ is an ordinary key and does not touch the prototype', () => {
  const [c] = parseWWWAuthenticate('Bearer __proto__="x", realm="r"');
  assert.ok(c);
  assert.equal(Object.getPrototypeOf(c.params), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(c.params, '__proto__')?.value, 'x');
  assert.equal(c.params.realm, 'r');
});

test('empty headers give no challenges', () => {
  assert.deepEqual(parseWWWAuthenticate(''), []);
  assert.deepEqual(parseWWWAuthenticate(' , ,'), []);
});

test('malformed headers are a ProtocolError (exit 4)', () => {
  for (const h of [
    'Bearer realm="unterminated',
    'Bearer realm="x\\',
    '=x',
    'Bearer realm="a" b="c"',
    'Bearer realm="a", "b"',
    'Bearer realm="a"junk',
    'Basic realm="x", =y',
    'Negotiate abc def',
    'x'.repeat(20_000),
  ]) {
    assert.throws(
      () => parseWWWAuthenticate(h),
      (err: unknown) => err instanceof ProtocolError && err.exitCode === 4 && err.code === 'INVALID_CHALLENGE',
      h,
    );
  }
});

test('scopeFor builds repository:<name>:<actions> in a fixed order without duplicates', () => {
  assert.equal(scopeFor('acme/mailbox', ['pull']), 'repository:acme/mailbox:pull');
  assert.equal(scopeFor('acme/mailbox', ['pull', 'push']), 'repository:acme/mailbox:pull,push');
  assert.equal(scopeFor('acme/mailbox', ['push', 'pull', 'push']), 'repository:acme/mailbox:pull,push');
  assert.equal(scopeFor('a', ['delete', 'pull']), 'repository:a:pull,delete');
});

test('scopeFor refuses names that could inject into the scope, and empty or unknown actions', () => {
  assert.throws(() => scopeFor('a:push b', ['pull']), InvalidReferenceError);
  assert.throws(() => scopeFor('a,repository:b', ['pull']), InvalidReferenceError);
  assert.throws(() => scopeFor('a', []), UsageError);
  assert.throws(() => scopeFor('a', ['*' as 'pull']), UsageError);
});
