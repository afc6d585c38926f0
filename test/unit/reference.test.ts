import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExitCode, InvalidReferenceError } from '../../src/errors.ts';
import {
  formatReference,
  isLoopbackHost,
  parseReference,
  parseTargetRef,
  registryEndpointHost,
  validateRepositoryName,
  validateTag,
  type Reference,
} from '../../src/oci/reference.ts';

const D = `sha256:${'a'.repeat(64)}`;
const D512 = `sha512:${'b'.repeat(128)}`;

test('parseReference accepts valid references and splits registry, repository, tag and digest', () => {
  const table: [string, Reference][] = [
    ['ghcr.io/acme/mailbox', { registry: 'ghcr.io', repository: 'acme/mailbox' }],
    ['ghcr.io/acme/mailbox:v1.2.3', { registry: 'ghcr.io', repository: 'acme/mailbox', tag: 'v1.2.3' }],
    [`ghcr.io/acme/mailbox@${D}`, { registry: 'ghcr.io', repository: 'acme/mailbox', digest: D }],
    [`ghcr.io/acme/mailbox:latest@${D}`, { registry: 'ghcr.io', repository: 'acme/mailbox', tag: 'latest', digest: D }],
    [`quay.io/a/b/c/d@${D512}`, { registry: 'quay.io', repository: 'a/b/c/d', digest: D512 }],
    ['localhost:5000/mail', { registry: 'localhost:5000', repository: 'mail' }],
    ['localhost:5000/mail:5000', { registry: 'localhost:5000', repository: 'mail', tag: '5000' }],
    ['localhost/mail', { registry: 'localhost', repository: 'mail' }],
    ['127.0.0.1:5000/a/b:t', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 't' }],
    ['[::1]:5000/mail:v1', { registry: '[::1]:5000', repository: 'mail', tag: 'v1' }],
    ['[::1]/mail', { registry: '[::1]', repository: 'mail' }],
    ['[2001:db8::1]:443/x', { registry: '[2001:db8::1]:443', repository: 'x' }],
    ['registry:5000/x', { registry: 'registry:5000', repository: 'x' }],
    ['my-registry.example.com:65535/a.b/c_d/e__f/g---h', { registry: 'my-registry.example.com:65535', repository: 'a.b/c_d/e__f/g---h' }],
    ['ghcr.io/a:_Tag-With.UPPER_case', { registry: 'ghcr.io', repository: 'a', tag: '_Tag-With.UPPER_case' }],
    [`ghcr.io/a:${'t'.repeat(128)}`, { registry: 'ghcr.io', repository: 'a', tag: 't'.repeat(128) }],
    [`ghcr.io/${'a'.repeat(255)}`, { registry: 'ghcr.io', repository: 'a'.repeat(255) }],
  ];
  for (const [input, want] of table) assert.deepEqual(parseReference(input), want, input);
});

test('parseReference normalises Docker Hub names as docker does', () => {
  const table: [string, Reference][] = [
    ['ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['ubuntu:24.04', { registry: 'docker.io', repository: 'library/ubuntu', tag: '24.04' }],
    [`ubuntu@${D}`, { registry: 'docker.io', repository: 'library/ubuntu', digest: D }],
    ['acme/mailbox', { registry: 'docker.io', repository: 'acme/mailbox' }],
    ['acme/team/mailbox:v1', { registry: 'docker.io', repository: 'acme/team/mailbox', tag: 'v1' }],
    ['docker.io/ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['docker.io/library/ubuntu', { registry: 'docker.io', repository: 'library/ubuntu' }],
    ['index.docker.io/ubuntu:1', { registry: 'docker.io', repository: 'library/ubuntu', tag: '1' }],
    ['index.docker.io/acme/x', { registry: 'docker.io', repository: 'acme/x' }],
    // No '/' means no registry part, even for 'localhost' or a port-like suffix (that is a tag).
    ['localhost', { registry: 'docker.io', repository: 'library/localhost' }],
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    // A non-lowercase first component cannot be a Docker Hub namespace, so it is a host.
    ['MyRegistry/app', { registry: 'MyRegistry', repository: 'app' }],
    // Other registries never get 'library/'.
    ['ghcr.io/ubuntu', { registry: 'ghcr.io', repository: 'ubuntu' }],
    ['registry-1.docker.io/ubuntu', { registry: 'registry-1.docker.io', repository: 'ubuntu' }],
  ];
  for (const [input, want] of table) assert.deepEqual(parseReference(input), want, input);
});

test('parseReference refuses invalid references with InvalidReferenceError quoting the input', () => {
  const table: [string, RegExp][] = [
    ['', /must not be empty/],
    ['Ubuntu', /must be lowercase/],
    ['docker.io/Library/ubuntu', /must be lowercase/],
    ['ghcr.io/acme/Mailbox', /must be lowercase/],
    ['ghcr.io/', /repository name is empty/],
    ['ghcr.io/a//b', /empty path component/],
    ['ghcr.io/a/', /empty path component/],
    ['ghcr.io/-a', /path component "-a"/],
    ['ghcr.io/a-', /path component "a-"/],
    ['ghcr.io/a..b', /path component "a..b"/],
    ['ghcr.io/a___b', /path component "a___b"/],
    ['ghcr.io/a b', /whitespace/],
    ['ghcr.io/a:', /nothing follows ':'/],
    ['ghcr.io/a:-x', /invalid tag "-x"/],
    ['ghcr.io/a:.x', /invalid tag ".x"/],
    ['ghcr.io/a:x/y', /path component "a:x"/],
    ['a:b:c', /invalid tag "b:c"/],
    [`ghcr.io/a:${'t'.repeat(129)}`, /invalid tag/],
    [`ghcr.io/${'a'.repeat(256)}`, /longer than 255/],
    ['ghcr.io/a@', /nothing follows '@'/],
    ['ghcr.io/a@sha256:abc', /expected 64 lowercase hex/],
    [`ghcr.io/a@sha256:${'A'.repeat(64)}`, /lowercase hex/],
    [`ghcr.io/a@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
    [`ghcr.io/a@${D}@${D}`, /more than one '@'/],
    ['https://ghcr.io/a', /no URL scheme/],
    ['ghcr.io:/a', /port "" is not a number/],
    ['ghcr.io:http/a', /port "http" is not a number/],
    ['ghcr.io:0/a', /outside 1-65535/],
    ['ghcr.io:65536/a', /outside 1-65535/],
    ['-bad.example.com/a', /label "-bad"/],
    ['bad_host.com/a', /label "bad_host"/],
    ['example..com/a', /empty label/],
    ['[::1/a', /not closed/],
    ['[::1]x/a', /only ':<port>'/],
    ['[fe80::1%25eth0]/a', /not an IPv6 address/],
    ['[not:ipv6:zz]/a', /not an IPv6 address/],
    [`ghcr.io@${D}/a`, /'@' must follow a repository name/],
    ['ghcr.io/a\0b', /path component/],
  ];
  for (const [input, why] of table) {
    assert.throws(
      () => parseReference(input),
      (err: unknown) => {
        assert.ok(err instanceof InvalidReferenceError, `${input}: ${String(err)}`);
        assert.equal(err.exitCode, ExitCode.PROTOCOL);
        assert.match(err.message, why, input);
        if (input.length < 200) assert.ok(err.message.includes(JSON.stringify(input)), `message quotes the input: ${err.message}`);
        return true;
      },
      input,
    );
  }
});

test('a bad digest keeps the digest error code and its cause', () => {
  assert.throws(
    () => parseReference('ghcr.io/a@sha256:abc'),
    (err: unknown) => err instanceof InvalidReferenceError && err.code === 'DIGEST_INVALID' && err.cause instanceof InvalidReferenceError,
  );
});

test('hostile long inputs are refused quickly and the message is truncated', () => {
  const long = `ghcr.io/${'a-'.repeat(50_000)}!`;
  assert.throws(
    () => parseReference(long),
    (err: unknown) => err instanceof InvalidReferenceError && err.message.length < 1000,
  );
});

test('formatReference is the inverse of parseReference for fully qualified names', () => {
  for (const s of ['ghcr.io/a/b', 'ghcr.io/a/b:v1', `localhost:5000/a@${D}`, `[::1]:5000/a:t@${D}`, 'docker.io/library/ubuntu:24.04']) {
    assert.equal(formatReference(parseReference(s)), s);
  }
  assert.equal(formatReference(parseReference('ubuntu')), 'docker.io/library/ubuntu');
});

test('validateRepositoryName and validateTag throw InvalidReferenceError on their own', () => {
  assert.doesNotThrow(() => validateRepositoryName('a/b.c/d_e'));
  assert.throws(() => validateRepositoryName('A'), InvalidReferenceError);
  assert.throws(() => validateRepositoryName(''), InvalidReferenceError);
  assert.throws(() => validateRepositoryName('a,b'), InvalidReferenceError);
  assert.doesNotThrow(() => validateTag('v1.0_rc-1'));
  assert.throws(() => validateTag(''), InvalidReferenceError);
  assert.throws(() => validateTag('a+b'), InvalidReferenceError);
});

test('registryEndpointHost sends Docker Hub to registry-1.docker.io and leaves others alone', () => {
  assert.equal(registryEndpointHost('docker.io'), 'registry-1.docker.io');
  assert.equal(registryEndpointHost('index.docker.io'), 'registry-1.docker.io');
  assert.equal(registryEndpointHost('ghcr.io'), 'ghcr.io');
  assert.equal(registryEndpointHost('localhost:5000'), 'localhost:5000');
});

test('isLoopbackHost recognises localhost, 127.0.0.0/8 and [::1], with or without a port', () => {
  for (const h of [
    'localhost',
    'localhost:5000',
    'LOCALHOST',
    '127.0.0.1',
    '127.0.0.1:5000',
    '127.255.0.9:80',
    '[::1]',
    '[::1]:5000',
    '::1',
    '[0:0:0:0:0:0:0:1]:1',
  ]) {
    assert.equal(isLoopbackHost(h), true, h);
  }
  for (const h of [
    'ghcr.io',
    'localhost.evil.com',
    'evil-localhost',
    '128.0.0.1',
    '127.0.0',
    '127.0.0.1.nip.io',
    '[::2]',
    '[::1',
    '[::1]x',
    '10.0.0.1:5000',
    'localhost:abc',
    '0.0.0.0',
    '',
  ]) {
    assert.equal(isLoopbackHost(h), false, h);
  }
});

test('parseTargetRef: oci: names a layout folder, anything else a remote reference', () => {
  assert.deepEqual(parseTargetRef('ghcr.io/a/b:v1'), { kind: 'remote', reference: { registry: 'ghcr.io', repository: 'a/b', tag: 'v1' } });
  assert.deepEqual(parseTargetRef('ubuntu'), { kind: 'remote', reference: { registry: 'docker.io', repository: 'library/ubuntu' } });
  const table: [string, object][] = [
    ['oci:./box', { kind: 'layout', path: './box' }],
    ['oci:/tmp/box:v1', { kind: 'layout', path: '/tmp/box', tag: 'v1' }],
    [`oci:box@${D}`, { kind: 'layout', path: 'box', digest: D }],
    [`oci:box:v1@${D}`, { kind: 'layout', path: 'box', tag: 'v1', digest: D }],
    // ':' or '@' followed by a path separator belongs to the path.
    ['oci:/tmp/a:b/box', { kind: 'layout', path: '/tmp/a:b/box' }],
    ['oci:/tmp/a:b/box:t', { kind: 'layout', path: '/tmp/a:b/box', tag: 't' }],
    ['oci:/srv/me@host/box', { kind: 'layout', path: '/srv/me@host/box' }],
    // A trailing '/' keeps a ':' in the last segment part of the path.
    ['oci:./a:b/', { kind: 'layout', path: './a:b/' }],
    // A Windows drive is never a tag.
    ['oci:C:\\mail\\box', { kind: 'layout', path: 'C:\\mail\\box' }],
    ['oci:C:\\mail\\box:v2', { kind: 'layout', path: 'C:\\mail\\box', tag: 'v2' }],
  ];
  for (const [input, want] of table) assert.deepEqual(parseTargetRef(input), want, input);
});

test('parseTargetRef refuses a malformed layout tag or digest rather than reading it as a path', () => {
  const table: [string, RegExp][] = [
    ['oci:', /path after 'oci:' is empty/],
    ['oci::v1', /path after 'oci:' is empty/],
    ['oci:box:', /nothing follows ':'/],
    ['oci:box:v1+build', /invalid tag "v1\+build"/],
    ['oci:box@', /nothing follows '@'/],
    ['oci:box@sha256:abc', /invalid sha256 digest/],
    ['oci:me@host', /invalid digest "host"/],
  ];
  for (const [input, why] of table) {
    assert.throws(
      () => parseTargetRef(input),
      (err: unknown) => err instanceof InvalidReferenceError && why.test(err.message) && err.message.includes(JSON.stringify(input)),
      input,
    );
  }
  assert.throws(() => parseTargetRef('ghcr.io/A'), InvalidReferenceError);
  for (const path of ['./box', '../box', '/tmp/box', '~/box']) {
    assert.throws(
      () => parseTargetRef(path),
      (err: unknown) => err instanceof InvalidReferenceError && err.message.includes(`write oci:${path}`),
      path,
    );
  }
});
