/**
 * The partial-file folder cannot be squatted by another local user. recv writes a message into a
 * partial file and links it into --out; a user who can write into the folder holding that file can
 * swap it for their own just before the link, and unsigned bytes would be delivered as verified.
 * The usual folder name (`$TMPDIR/comms-partial-<uid>`) is predictable, so another user can make
 * it first, mode 0777: recv must then leave it alone and use a private folder of its own.
 *
 * With two real users (the suite runs as root in CI; `setpriv` runs the attacker as another uid):
 * the attacker makes the folder, watches it, and renames its own file over every partial file that
 * appears. As one user (when not root): a pre-made 0777 folder must not be used at all.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runComms, TEST_KEY, TEST_PUB } from '../support/cli.ts';
import { requireTool, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const ATTACKER_UID = 65534;
const isRoot = process.getuid?.() === 0;
const uid = process.getuid?.() ?? 0;

/** Runs as the other user: squats the folder, then replaces every partial file that appears. */
const ATTACKER = `
import { chmodSync, mkdirSync, renameSync, watch, writeFileSync } from 'node:fs';
const dir = process.argv[2];
mkdirSync(dir, { mode: 0o777 });
chmodSync(dir, 0o777);
const seen = [];
watch(dir, (_event, name) => {
  if (typeof name !== 'string' || !name.endsWith('.part') || seen.includes(name)) return;
  seen.push(name);
  try {
    writeFileSync(dir + '/evil', 'attacker bytes, never signed by the sender');
    renameSync(dir + '/evil', dir + '/' + name);
  } catch {}
});
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify(seen) + '\\n'); process.exit(0); });
process.stdout.write('ready\\n');
`;

let work: TempDir;
let mailbox: string;
let payload: Buffer;

before(async () => {
  work = await tempDir('comms-squat-');
  // The other user must reach the shared temp folder and the attacker script.
  await chmod(work.path, 0o755);
  mailbox = `oci:${path.join(work.path, 'mailbox')}`;
  payload = Buffer.alloc(6 * 1024 * 1024);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
  const file = path.join(work.path, 'report.bin');
  await writeFile(file, payload);
  const sent = await runComms(['send', file, '--repo', mailbox, '--to', 'bob', '--sender', 'alice', '--key', TEST_KEY, '--chunk-bytes', '256KiB', '--json']);
  assert.equal(sent.code, 0, sent.stderr);
});
after(async () => {
  await work?.cleanup();
});

/** A shared temp folder like /tmp (1777) and an empty --out on the same filesystem. */
async function folders(label: string): Promise<{ tmp: string; out: string }> {
  const tmp = path.join(work.path, label, 'tmp');
  const out = path.join(work.path, label, 'out');
  await mkdir(tmp, { recursive: true });
  await chmod(path.join(work.path, label), 0o755);
  await chmod(tmp, 0o1777);
  await mkdir(out);
  return { tmp, out };
}

async function recv(tmp: string, out: string) {
  return runComms(['recv', '--repo', mailbox, '--me', 'bob', '--out', out, '--trusted-key', TEST_PUB, '--json'], { env: { TMPDIR: tmp } });
}

describe('recv and a partial-file folder made by someone else', () => {
  it("another local user squats comms-partial-<uid> (0777) and swaps partial files: the sender's bytes are delivered, the attacker sees no partial file", async (t) => {
    if (!isRoot) return t.skip('needs root to run the attacker as another uid (the single-user case below runs instead)');
    if (!requireTool('setpriv')) return t.skip(skipMessage('setpriv'));
    const { tmp, out } = await folders('two-users');
    const script = path.join(work.path, 'attacker.mjs');
    await writeFile(script, ATTACKER, { mode: 0o644 });
    const squatted = path.join(tmp, `comms-partial-${uid}`);
    const attacker = spawn('setpriv', [`--reuid=${ATTACKER_UID}`, `--regid=${ATTACKER_UID}`, '--clear-groups', process.execPath, script, squatted], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    attacker.stdout.on('data', (b: Buffer) => (output += b.toString()));
    const exited = new Promise<void>((resolve) => attacker.once('close', () => resolve()));
    try {
      await new Promise<void>((resolve, reject) => {
        attacker.stdout.on('data', () => output.includes('ready\n') && resolve());
        attacker.once('close', (code) => reject(new Error(`the attacker process ended early (${code})`)));
      });
      assert.equal((await lstat(squatted)).uid, ATTACKER_UID, 'the folder belongs to the other user');

      const r = await recv(tmp, out);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.json.length, 1);
      assert.ok(r.json[0]!['verified'], 'reported as verified');
      const delivered = await readFile(path.join(out, 'report.bin'));
      assert.ok(delivered.equals(payload), 'what was delivered is exactly what the sender signed');
    } finally {
      attacker.kill('SIGTERM');
      await exited;
    }
    const seen = JSON.parse(output.split('\n').find((l) => l.startsWith('[')) ?? '[]') as string[];
    assert.deepEqual(seen, [], 'no partial file ever appeared in the folder the other user made');
    assert.equal((await lstat(squatted)).mode & 0o777, 0o777, 'their folder was left as it was');
    assert.deepEqual((await readdir(tmp)).sort(), [`comms-partial-${uid}`], 'the private folder of the run is gone');
  });

  it('a pre-made 0777 comms-partial-<uid> folder is not used (one user)', async () => {
    const { tmp, out } = await folders('one-user');
    const squatted = path.join(tmp, `comms-partial-${uid}`);
    await mkdir(squatted, { mode: 0o777 });
    await chmod(squatted, 0o777);
    const appeared: string[] = [];
    const watcher = watch(squatted, (_event, name) => void (name !== null && appeared.push(name)));
    try {
      const r = await recv(tmp, out);
      assert.equal(r.code, 0, r.stderr);
      assert.ok((await readFile(path.join(out, 'report.bin'))).equals(payload));
    } finally {
      watcher.close();
    }
    assert.deepEqual(appeared, [], 'nothing was written into the loose folder');
    assert.equal((await lstat(squatted)).mode & 0o777, 0o777, 'the folder found there was left as it was');
    assert.deepEqual((await readdir(tmp)).sort(), [`comms-partial-${uid}`], 'the private folder of the run is gone');
  });
});
