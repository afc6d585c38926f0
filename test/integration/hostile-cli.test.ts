/**
 * Hostile inputs, through the real CLI (src/cli/run.ts as a child process)
 * and real stores: every artifact under fixtures/hostile/ is put into docker-registry (plain HTTP)
 * and into an `oci:` layout under an inbox tag for `bob`, and `comms recv --no-verify --include-expired` (the fixtures are dated 2025, expired since) must end
 * with exit 4, a message on stderr naming what was wrong, nothing at all in --out (hidden files
 * included) and no partial file left in its scratch folder. Then hostile names and flags: bad
 * references are refused before any request, bad flag values and unknown flags with a clear
 * message, and --json errors are JSON.
 *
 * Where a store refuses to hold a case (see STORE_REFUSES), the case is planted in the store's
 * files directly, as a compromised registry or a hand-edited layout would serve it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { openRepository } from '../../src/oci/open.ts';
import { inboxPrefix } from '../../src/protocol/tags.ts';
import { cleanEnv, listAll } from '../support/hostile-cli.ts';
import { jsonLines, runComms, type CliResult } from '../support/cli.ts';
import { startHostileRegistry, type HostileRegistry } from '../support/hostile-registry.ts';
import { hostileCaseNames, loadHostileCase, storeInLayout, storeInRegistry, type Stored } from '../support/hostile-store.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

/**
 * What each case must be refused with: the error code (seen with --json) and what the message
 * must say (seen on stderr). A fixture folder without an entry here fails the suite.
 */
const EXPECT: Record<string, { code: string; says: RegExp }> = {
  'traversal-filename': { code: 'UNSAFE_FILENAME', says: /dockercomms\.filename "\.\.\/\.\.\/etc\/passwd" is refused/ },
  'absolute-filename': { code: 'UNSAFE_FILENAME', says: /dockercomms\.filename "\/abs\/x" is refused/ },
  'index-gap': { code: 'CHUNK_INDEX_GAP', says: /chunk index 3, outside 0\.\.2: a chunk is missing/ },
  'index-duplicate': { code: 'CHUNK_INDEX_DUPLICATE', says: /chunk index 1 appears twice/ },
  'total-bytes-mismatch': { code: 'TOTAL_BYTES_MISMATCH', says: /total_bytes 100 .*chunk_count is 3/ },
  'chunk-count-mismatch': { code: 'CHUNK_COUNT_MISMATCH', says: /chunk_count is 3 but the manifest has 2 layers/ },
  'missing-annotation': { code: 'ANNOTATION_MISSING', says: /annotation dockercomms\.recipient is missing/ },
  'malformed-created-at': { code: 'ANNOTATION_INVALID', says: /dockercomms\.created_at "yesterday at noon" is not an RFC 3339/ },
  'malformed-total-bytes': { code: 'ANNOTATION_INVALID', says: /dockercomms\.total_bytes "0x18" is not a canonical/ },
  'oversize-manifest': { code: 'MANIFEST_TOO_LARGE', says: /manifest .*4194304/ },
  'two-entries': { code: 'TAR_MULTIPLE_ENTRIES', says: /chunk 0: the tar holds more than one entry/ },
  'symlink-entry': { code: 'TAR_ENTRY_TYPE', says: /chunk 0: the tar entry is a symbolic link, not a regular file/ },
  'wrong-entry-name': { code: 'TAR_ENTRY_NAME', says: /chunk 0: the tar entry is named "\.\.\/\.\.\/chunk_0\.bin", expected "chunk_0\.bin"/ },
  'pax-header': { code: 'TAR_ENTRY_TYPE', says: /chunk 0: the tar entry is a PAX extended header, not a regular file/ },
  'oversize-entry': { code: 'CHUNK_TOO_LARGE', says: /chunk 0: the tar entry has 4096 bytes, more than chunk_bytes 24/ },
  'gzip-bomb': { code: 'CHUNK_TOO_LARGE', says: /chunk 0 decompresses to more than \d+ bytes \(chunk_bytes 1048576\): refusing a decompression bomb/ },
  'trailing-data': { code: 'TAR_TRAILING_DATA', says: /chunk 0: data after the tar's end-of-archive marker/ },
  'truncated-entry': { code: 'TAR_TRUNCATED', says: /chunk 0: the tar entry is cut short/ },
  'backslash-filename': { code: 'UNSAFE_FILENAME', says: /dockercomms\.filename "\.\.\\\\\.\.\\\\evil\.bat" is refused: it contains a backslash/ },
  'control-char-filename': { code: 'UNSAFE_FILENAME', says: /refused: it contains the control or formatting character U\+001B/ },
  'c1-control-filename': { code: 'UNSAFE_FILENAME', says: /refused: it contains the control or formatting character U\+009B/ },
  'bidi-override-filename': { code: 'UNSAFE_FILENAME', says: /refused: it contains the control or formatting character U\+202E/ },
  'unsupported-compression': { code: 'COMPRESSION_UNSUPPORTED', says: /dockercomms\.compression is "lz4", expected gzip or zstd/ },
  'layer-media-type-mismatch': {
    code: 'LAYER_MEDIA_TYPE',
    says: /layers\[0\] has media type "application\/vnd\.dockercomms\.chunk\.v1\.tar\+gzip"; compression zstd needs/,
  },
  'noncanonical-chunk-count': { code: 'ANNOTATION_INVALID', says: /dockercomms\.chunk_count "01" is not a canonical/ },
  'wrong-artifact-type': {
    code: 'ARTIFACT_TYPE',
    says: /artifactType is "application\/vnd\.dockercomms\.receipt\.v1", expected application\/vnd\.dockercomms\.message\.v1/,
  },
  'short-entry': { code: 'CHUNK_SIZE_MISMATCH', says: /chunk 0: the tar entry has 12 bytes, the manifest implies 24/ },
  'empty-tar': { code: 'TAR_EMPTY', says: /chunk 0: the tar holds no entry/ },
  'layer-digest-mismatch': { code: 'DIGEST_MISMATCH', says: /(content digest mismatch: expected|content for) sha256:6f9e6a21f633/ },
};

/**
 * Cases that are not refused but written under a safe name, as dockercomms v1.0 writes them
 * (`..` becomes `file`): nothing lands outside --out.
 */
const WRITTEN_AS: Record<string, string> = {
  'dotdot-filename': 'file',
};

/**
 * Cases a store will not hold through its own API, and so are planted in its files: both check a
 * blob's digest on upload (the mismatching chunk), and both refuse manifests above 4 MiB
 * (docker-registry answers 400 MANIFEST_INVALID "request body too large"). Asserted, so a store
 * that starts accepting one of them is noticed.
 */
const STORE_REFUSES: Record<string, string[]> = {
  'layer-digest-mismatch': ['blob'],
  'oversize-manifest': ['manifest'],
};

/**
 * What docker-registry lets through differs from the case's own refusal in one case: even planted
 * in its storage, it will not read a manifest above 4 MiB ("storage: read exceeds limit") and
 * answers 500, so recv sees a registry failure (exit 1), never the bytes. The receiver's own cap
 * is proven on the layout and on a registry stand-in that does send them (below).
 */
const REGISTRY_OUTCOME: Record<string, { exit: number; says: RegExp }> = {
  'oversize-manifest': { exit: 1, says: /answered HTTP 500/ },
};

/** Characters a terminal acts on; no stderr line may carry them raw, whatever a message quotes. */
const TERMINAL_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

const names = await hostileCaseNames();
const TAG = `${inboxPrefix('bob')}20250601-0badc0de-9b2e7f0c`;

let registry: RegistryServer | undefined;
let work: TempDir;
let dockerConfig: string;
let compileCache: string;

before(async () => {
  work = await tempDir('comms-hostile-cli-');
  dockerConfig = path.join(work.path, 'docker');
  compileCache = path.join(work.path, 'node-compile-cache');
  await mkdir(dockerConfig, { recursive: true });
  if (requireTool('docker-registry')) registry = await startRegistry({ mode: 'plain' });
});

after(async () => {
  await registry?.stop();
  await work?.cleanup();
});

/** A run's own folders: --out (created empty, as a user's would be) and its TMPDIR. */
async function runFolders(label: string, createOut = true): Promise<{ out: string; tmp: string; env: Record<string, string> }> {
  const base = path.join(work.path, 'runs', label);
  const out = path.join(base, 'out');
  const tmp = path.join(base, 'tmp');
  if (createOut) await mkdir(out, { recursive: true });
  await mkdir(tmp, { recursive: true });
  // The compile cache only spares the children re-parsing the sources; it changes no behaviour.
  return { out, tmp, env: { ...cleanEnv(tmp, dockerConfig), NODE_COMPILE_CACHE: compileCache } };
}

/** Nothing in --out, hidden or not, and no partial file in the scratch folder (TMPDIR here). */
async function assertNothingLeft(out: string, tmp: string, r: CliResult): Promise<void> {
  assert.deepEqual(await listAll(out), [], `--out must stay empty\n${r.stderr}`);
  const left = (await listAll(tmp)).filter((p) => !/^comms-partial-\d+$/.test(p));
  assert.deepEqual(left, [], 'no partial file may be left in the scratch folder');
}

function plantedKinds(s: Stored): string[] {
  return s.planted.map((p) => p.split(' ')[0]!);
}

/** The one error object of a --json run's stderr (every stderr line must be JSON). */
function jsonError(r: CliResult): { code: string; message: string; exitCode: number } {
  const errors = jsonLines(r.stderr).filter((l) => 'error' in l);
  assert.equal(errors.length, 1, `exactly one error object on stderr:\n${r.stderr}`);
  const e = errors[0]!['error'] as { code: string; message: string; exitCode: number };
  assert.equal(typeof e.code, 'string');
  assert.equal(typeof e.message, 'string');
  assert.equal(e.exitCode, r.code, 'the error object carries the exit code');
  return e;
}

describe('hostile artifacts through `comms recv --no-verify`', { concurrency: 3 }, () => {
  it('every fixture under fixtures/hostile/ has an expectation in this suite', () => {
    assert.deepEqual(
      names.filter((n) => EXPECT[n] === undefined && WRITTEN_AS[n] === undefined),
      [],
    );
    assert.ok(names.length >= 30, `${names.length} cases`);
  });

  // The fixtures were made in 2025 and have expired since: every recv passes --include-expired, so
  // that a hostile artifact is refused for what it is, not passed over for its age.
  for (const name of names) {
    const expected = EXPECT[name];
    if (expected === undefined) continue;
    const outcome = REGISTRY_OUTCOME[name] ?? { exit: 4, says: expected.says };

    it(`${name}: docker-registry → exit ${outcome.exit}, stderr says why, --out empty; --json names ${expected.code}`, async (t) => {
      if (registry === undefined) return t.skip(skipMessage('docker-registry'));
      const c = await loadHostileCase(name);
      const repo = `hostile/${name}`;
      const stored = await storeInRegistry(registry, repo, TAG, c);
      assert.deepEqual(plantedKinds(stored), STORE_REFUSES[name] ?? [], `what docker-registry refused: ${stored.refusals.join('; ')}`);

      const { out, tmp, env } = await runFolders(`registry-${name}`);
      const r = await runComms(['recv', '--repo', `${registry.host}/${repo}`, '--me', 'bob', '--out', out, '--no-verify', '--include-expired'], {
        baseEnv: env,
      });
      assert.equal(r.code, outcome.exit, `exit code\n${r.stderr}`);
      if (outcome.exit === 4) assert.match(r.stderr, /comms: refused \S+: /);
      assert.match(r.stderr, outcome.says);
      assert.doesNotMatch(r.stderr, TERMINAL_UNSAFE);
      assert.equal(r.stdout, '');
      await assertNothingLeft(out, tmp, r);

      // With --json the refusal is a result line on stdout carrying the code; stderr is JSON too.
      const j = await runFolders(`registry-json-${name}`);
      const rj = await runComms(['recv', '--repo', `${registry.host}/${repo}`, '--me', 'bob', '--out', j.out, '--no-verify', '--include-expired', '--json'], {
        baseEnv: j.env,
      });
      assert.equal(rj.code, outcome.exit, rj.stderr);
      const notes = jsonLines(rj.stderr);
      if (outcome.exit === 4) {
        const lines = jsonLines(rj.stdout);
        assert.equal(lines.length, 1, rj.stdout);
        const error = lines[0]!['error'] as { code: string; message: string; exitCode: number };
        assert.equal(error.code, expected.code, error.message);
        assert.equal(error.exitCode, 4);
        assert.match(error.message, expected.says);
        assert.ok(
          notes.every((l) => 'note' in l),
          rj.stderr,
        );
      } else {
        assert.equal(rj.stdout, '');
        assert.match(jsonError(rj).message, outcome.says);
      }
      assert.doesNotMatch(rj.stdout + rj.stderr, TERMINAL_UNSAFE);
      await assertNothingLeft(j.out, j.tmp, rj);
    });

    it(`${name}: oci: layout → exit 4, stderr says why, --out empty`, async () => {
      const c = await loadHostileCase(name);
      const layout = path.join(work.path, 'layouts', name);
      const stored = await storeInLayout(layout, TAG, c);
      assert.deepEqual(plantedKinds(stored), STORE_REFUSES[name] ?? [], `what the layout refused: ${stored.refusals.join('; ')}`);

      const { out, tmp, env } = await runFolders(`layout-${name}`);
      const r = await runComms(['recv', '--repo', `oci:${layout}`, '--me', 'bob', '--out', out, '--no-verify', '--include-expired'], { baseEnv: env });
      assert.equal(r.code, 4, `exit code\n${r.stderr}`);
      assert.match(r.stderr, /comms: refused \S+: /);
      assert.match(r.stderr, expected.says);
      assert.doesNotMatch(r.stderr, TERMINAL_UNSAFE);
      assert.equal(r.stdout, '');
      await assertNothingLeft(out, tmp, r);
    });
  }
});

describe('hostile names that v1.0 writes under a safe name', () => {
  for (const [name, written] of Object.entries(WRITTEN_AS)) {
    it(`${name}: oci: layout → exit 0, the file is written as ${written} inside --out, nothing else`, async () => {
      const c = await loadHostileCase(name);
      const layout = path.join(work.path, 'layouts', name);
      await storeInLayout(layout, TAG, c);
      const { out, env } = await runFolders(`layout-${name}`);
      // The fixtures were made in 2025 and have expired since: --include-expired receives them anyway.
      const r = await runComms(['recv', '--repo', `oci:${layout}`, '--me', 'bob', '--out', out, '--no-verify', '--include-expired', '--json'], {
        baseEnv: env,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await listAll(out), [written]);
      assert.equal(jsonLines(r.stdout)[0]!['filename'], written);
      // Nothing beside --out either (where `..` would point).
      assert.deepEqual((await readdir(path.dirname(out))).sort(), ['out', 'tmp']);
    });
  }
});

describe('an oversize manifest from a registry that sends one', () => {
  for (const chunked of [false, true]) {
    it(`is refused at 4 MiB (${chunked ? 'streamed without Content-Length' : 'announced by Content-Length'}): exit 4, --out empty`, async () => {
      const c = await loadHostileCase('oversize-manifest');
      const stand = await startHostileRegistry({ manifests: { 'hostile/oversize': { [TAG]: c.manifest } }, chunked });
      try {
        const { out, tmp, env } = await runFolders(`standin-oversize-${chunked}`);
        const r = await runComms(['recv', '--repo', `${stand.host}/hostile/oversize`, '--me', 'bob', '--out', out, '--no-verify', '--json'], { baseEnv: env });
        assert.equal(r.code, 4, r.stderr);
        const line = jsonLines(r.stdout)[0]!['error'] as { code: string; message: string };
        assert.equal(line.code, 'MANIFEST_TOO_LARGE', line.message);
        assert.match(line.message, /4194304/);
        assert.ok(
          stand.requests.some((q) => q.startsWith('GET /v2/hostile/oversize/manifests/')),
          stand.requests.join('\n'),
        );
        await assertNothingLeft(out, tmp, r);
      } finally {
        await stand.close();
      }
    });
  }
});

describe('hostile messages beside a genuine one', () => {
  it('oci: layout: each hostile one is refused, the genuine one is delivered, exit 4', async () => {
    const layout = path.join(work.path, 'layouts', 'mixed');
    const { out, tmp, env } = await runFolders('mixed');
    const good = await runComms(['send', '--repo', `oci:${layout}`, '--to', 'bob', '--message', 'the real one', '--no-sign', '--json'], { baseEnv: env });
    assert.equal(good.code, 0, good.stderr);
    const hostile = ['traversal-filename', 'gzip-bomb', 'two-entries', 'wrong-entry-name'];
    // Distinct inbox tags; the layer cases share one message id, so every copy must be tried.
    for (const [i, name] of hostile.entries()) await storeInLayout(layout, `${TAG.slice(0, -8)}0000000${i}`, await loadHostileCase(name));
    const r = await runComms(['recv', '--repo', `oci:${layout}`, '--me', 'bob', '--out', out, '--no-verify', '--include-expired', '--json'], { baseEnv: env });
    assert.equal(r.code, 4, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.deepEqual(
      lines
        .filter((l) => 'error' in l)
        .map((l) => (l['error'] as { code: string }).code)
        .sort(),
      ['CHUNK_TOO_LARGE', 'TAR_ENTRY_NAME', 'TAR_MULTIPLE_ENTRIES', 'UNSAFE_FILENAME'],
    );
    assert.deepEqual(
      lines.filter((l) => !('error' in l)).map((l) => l['digest']),
      [jsonLines(good.stdout)[0]!['digest']],
    );
    assert.deepEqual(await listAll(out), ['message.txt']);
    const left = (await listAll(tmp)).filter((p) => !/^comms-partial-\d+$/.test(p));
    assert.deepEqual(left, []);
  });
});

describe('a message whose chunk is missing from the store', () => {
  for (const kind of ['docker-registry', 'oci: layout']) {
    it(`${kind}: that message is refused (exit 5, nothing written) and the next one is still delivered`, async (t) => {
      if (kind === 'docker-registry' && registry === undefined) return t.skip(skipMessage('docker-registry'));
      const ref = kind === 'docker-registry' ? `${registry!.host}/hostile/missing-chunk` : `oci:${path.join(work.path, 'layouts', 'missing-chunk')}`;
      const { out, tmp, env } = await runFolders(`missing-chunk-${kind.replace(/\W+/g, '-')}`);
      const sent: { digest: string; tag: string }[] = [];
      for (const text of ['first, its chunk will vanish', 'second, intact']) {
        const r = await runComms(['send', '--repo', ref, '--to', 'bob', '--message', text, '--no-sign', '--json'], { baseEnv: env });
        assert.equal(r.code, 0, r.stderr);
        sent.push(jsonLines(r.stdout)[0] as { digest: string; tag: string });
      }
      // Deleted after the manifest was pushed (a registry with deletion on allows it; a TTL sweep does it).
      const repo = await openRepository(ref);
      const layer = (JSON.parse(new TextDecoder().decode((await repo.fetchManifest(sent[0]!.digest)).bytes)) as { layers: Descriptor[] }).layers[0]!;
      await repo.delete(layer);

      const r = await runComms(['recv', '--repo', ref, '--me', 'bob', '--out', out, '--no-verify', '--json'], { baseEnv: env });
      assert.equal(r.code, 5, r.stdout + r.stderr);
      const lines = jsonLines(r.stdout);
      const refused = lines.filter((l) => 'error' in l);
      assert.deepEqual(
        refused.map((l) => l['digest']),
        [sent[0]!.digest],
      );
      assert.equal((refused[0]!['error'] as { exitCode: number }).exitCode, 5);
      assert.deepEqual(
        lines.filter((l) => !('error' in l)).map((l) => l['digest']),
        [sent[1]!.digest],
      );
      assert.deepEqual(await listAll(out), ['message.txt']);
      const left = (await listAll(tmp)).filter((p) => !/^comms-partial-\d+$/.test(p));
      assert.deepEqual(left, [], 'no partial file of the refused message');
    });
  }
});

describe('hostile names and flags', () => {
  let stand: HostileRegistry;
  let layouts: string;
  before(async () => {
    stand = await startHostileRegistry();
    layouts = path.join(work.path, 'flag-layouts');
    await mkdir(layouts, { recursive: true });
  });
  after(async () => {
    await stand?.close();
  });

  const badRefs: [string, RegExp][] = [
    ['HOST/Mailbox', /invalid repository name "Mailbox": it must be lowercase/],
    ['HOST/a/../b', /path component "\.\."/],
    ['HOST/mbox@sha256:abc', /invalid sha256 digest "sha256:abc"/],
    ['HOST/mbox:bad tag!', /invalid reference "[^"]+": it contains whitespace/],
    ['HOST/mbox:-leading-dash', /invalid tag "-leading-dash"/],
  ];
  for (const [ref, says] of badRefs) {
    it(`--repo ${JSON.stringify(ref)} is refused with exit 4 before any request, by recv and send`, async () => {
      const repo = ref.replace('HOST', stand.host);
      const before = stand.connections;
      const recv = await runFolders(`badref-recv-${ref}`, false);
      const r = await runComms(['recv', '--repo', repo, '--me', 'bob', '--out', recv.out, '--no-verify', '--json'], { baseEnv: recv.env });
      assert.equal(r.code, 4, r.stderr);
      assert.match(jsonError(r).message, says);
      const send = await runFolders(`badref-send-${ref}`, false);
      const s = await runComms(['send', '--repo', repo, '--to', 'bob', '--message', 'hi', '--no-sign'], { baseEnv: send.env });
      assert.equal(s.code, 4, s.stderr);
      assert.match(s.stderr, /^comms: error: invalid reference/m);
      assert.match(s.stderr, says);
      assert.equal(stand.connections, before, 'no connection was made to the registry');
      assert.deepEqual(await listAll(recv.out), [], 'recv did not create --out');
    });
  }

  it('a valid --repo on the same host does connect (the connection count above is a real check)', async () => {
    const { out, env } = await runFolders('goodref', false);
    const before = stand.connections;
    const r = await runComms(['recv', '--repo', `${stand.host}/mbox`, '--me', 'bob', '--out', out, '--no-verify'], { baseEnv: env });
    assert.ok(stand.connections > before, `connections: ${stand.connections}`);
    assert.equal(r.code, 5, r.stderr); // the stand-in knows no such repository: not found
  });

  const flagCases: { label: string; args: (layout: string, out: string) => string[]; says: RegExp }[] = [
    {
      label: 'send --chunk-bytes 0',
      args: (l) => ['send', '--repo', `oci:${l}`, '--to', 'bob', '--message', 'hi', '--no-sign', '--chunk-bytes', '0'],
      says: /--chunk-bytes: "0" must be at least 1 byte/,
    },
    {
      label: 'send --chunk-bytes 12XB',
      args: (l) => ['send', '--repo', `oci:${l}`, '--to', 'bob', '--message', 'hi', '--no-sign', '--chunk-bytes', '12XB'],
      says: /--chunk-bytes: "12XB" is not a size/,
    },
    {
      label: 'send --parallel 0',
      args: (l) => ['send', '--repo', `oci:${l}`, '--to', 'bob', '--message', 'hi', '--no-sign', '--parallel', '0'],
      says: /--parallel must be a positive integer, got 0/,
    },
    {
      label: 'recv --parallel 0',
      args: (l, o) => ['recv', '--repo', `oci:${l}`, '--me', 'bob', '--out', o, '--no-verify', '--parallel', '0'],
      says: /--parallel must be a positive integer, got 0/,
    },
    {
      label: 'recv --max 0',
      args: (l, o) => ['recv', '--repo', `oci:${l}`, '--me', 'bob', '--out', o, '--no-verify', '--max', '0'],
      says: /--max must be a positive integer/,
    },
    {
      label: 'recv --since garbage',
      args: (l, o) => ['recv', '--repo', `oci:${l}`, '--me', 'bob', '--out', o, '--no-verify', '--since', 'garbage'],
      says: /--since: "garbage" is neither an RFC 3339 time .* nor a duration/,
    },
    {
      label: 'recv --bogus',
      args: (l, o) => ['recv', '--repo', `oci:${l}`, '--me', 'bob', '--out', o, '--no-verify', '--bogus'],
      says: /unknown option --bogus/,
    },
    {
      label: 'send of a missing file',
      args: (l) => ['send', path.join(work.path, 'no-such-file.txt'), '--repo', `oci:${l}`, '--to', 'bob', '--no-sign'],
      says: /cannot read \S*no-such-file\.txt: ENOENT/,
    },
    { label: 'send of a folder', args: (l) => ['send', work.path, '--repo', `oci:${l}`, '--to', 'bob', '--no-sign'], says: /is not a regular file/ },
  ];
  for (const c of flagCases) {
    it(`${c.label}: exit 4 with a clear message, one JSON error with --json, and nothing created`, async () => {
      const slug = c.label.replace(/[^a-z0-9]+/gi, '-');
      const layout = path.join(layouts, slug);
      const human = await runFolders(`flag-${slug}`, false);
      const r = await runComms(c.args(layout, human.out), { baseEnv: human.env });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /^comms: error: /m);
      assert.match(r.stderr, c.says);
      assert.equal(r.stdout, '');

      const json = await runFolders(`flag-json-${slug}`, false);
      const rj = await runComms([...c.args(layout, json.out), '--json'], { baseEnv: json.env });
      assert.equal(rj.code, 4, rj.stderr);
      const e = jsonError(rj);
      assert.match(e.message, c.says);
      assert.equal(rj.stdout, '');

      // A refused command leaves no trace: no mailbox folder created, no --out folder.
      assert.deepEqual(await listAll(layout), [], 'the oci: mailbox was not created');
      assert.deepEqual([...(await listAll(human.out)), ...(await listAll(json.out))], [], '--out was not created');
    });
  }
});
