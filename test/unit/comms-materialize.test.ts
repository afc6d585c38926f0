/**
 * materialize(): the partial file is private (0600, in a folder only this user can enter), its
 * bytes are fsynced before it is linked into --out, a file put in its place is never delivered, and
 * a scratch folder someone else could write into is never used. (The same attack with two real users is in
 * test/integration/recv-partial-folder.test.ts.)
 */
import { after, before, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { materialize, openScratch } from '../../src/comms/materialize.ts';
import { send } from '../../src/comms/send.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { parseMessageManifest, type MessageInfo } from '../../src/protocol/validate.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

let work: TempDir;
let layout: OciLayout;
let info: MessageInfo;
const payload = Buffer.alloc(3 * 64 * 1024 + 17, 'x');

before(async () => {
  work = await tempDir('comms-materialize-');
  layout = await OciLayout.open(path.join(work.path, 'mb'), { create: true });
  const file = path.join(work.path, 'data.bin');
  await fs.writeFile(file, payload);
  const sent = await send({ unsigned: true, repository: layout, recipient: 'bob', sender: 'alice', input: { path: file }, chunkBytes: 64 * 1024 });
  info = parseMessageManifest((await layout.fetchManifest(sent.descriptor.digest)).bytes);
});
after(async () => {
  await work?.cleanup();
});

async function freshOut(name: string): Promise<string> {
  const out = path.join(work.path, name);
  await fs.mkdir(out);
  return out;
}

describe('materialize', () => {
  it('writes the partial file with mode 0600 in the scratch folder', async () => {
    const out = await freshOut('out-mode');
    const scratch = path.join(work.path, 'scratch-mode');
    await fs.mkdir(scratch, { mode: 0o700 });
    const modes = new Set<number>();
    await materialize(layout, info, {
      outDir: out,
      scratchDir: scratch,
      parallel: 1,
      onProgress: () => {
        for (const n of readdirSync(scratch)) modes.add(statSync(path.join(scratch, n)).mode & 0o777);
      },
    });
    assert.deepEqual([...modes], [0o600], 'every partial file seen while writing is 0600');
    assert.deepEqual(await fs.readFile(path.join(out, 'data.bin')), payload);
  });

  it('fsyncs the partial file before it is linked into --out', async () => {
    const out = await freshOut('out-order');
    const scratch = path.join(work.path, 'scratch-order');
    await fs.mkdir(scratch, { mode: 0o700 });
    const calls: string[] = [];
    const probe = await fs.open(path.join(work.path, 'probe'), 'w');
    const FileHandle = Object.getPrototypeOf(probe) as { sync: () => Promise<void>; stat: () => Promise<{ isDirectory(): boolean }> };
    await probe.close();
    const realSync = FileHandle.sync;
    const realLink = fs.link;
    const sync = mock.method(FileHandle, 'sync', async function (this: typeof FileHandle) {
      calls.push((await this.stat()).isDirectory() ? 'sync folder' : 'sync file');
      return realSync.call(this);
    });
    const link = mock.method(fs, 'link', async (from: string, to: string) => {
      calls.push(path.dirname(from) === scratch ? 'link partial' : 'link other');
      return realLink(from, to);
    });
    syncBuiltinESMExports();
    try {
      await materialize(layout, info, { outDir: out, scratchDir: scratch });
    } finally {
      sync.mock.restore();
      link.mock.restore();
      syncBuiltinESMExports();
    }
    assert.deepEqual(calls, ['sync file', 'link partial', 'sync folder'], 'the partial file is fsynced, then linked, then --out is fsynced');
    assert.deepEqual(await fs.readFile(path.join(out, 'data.bin')), payload);
  });

  it('refuses to deliver a partial file that was replaced before the link (nothing left in --out)', async () => {
    const out = await freshOut('out-swap');
    const scratch = path.join(work.path, 'scratch-swap');
    await fs.mkdir(scratch, { mode: 0o700 });
    let swapped = false;
    await assert.rejects(
      materialize(layout, info, {
        outDir: out,
        scratchDir: scratch,
        parallel: 1,
        onProgress: (n) => {
          if (n !== payload.length || swapped) return;
          swapped = true;
          const [name] = readdirSync(scratch);
          writeFileSync(path.join(scratch, 'other'), 'not what was received');
          renameSync(path.join(scratch, 'other'), path.join(scratch, name!));
        },
      }),
      { code: 'PARTIAL_FILE_REPLACED' },
    );
    assert.ok(swapped);
    assert.deepEqual(await fs.readdir(out), []);
    assert.deepEqual(await fs.readdir(scratch), []);
  });
});

describe('openScratch', () => {
  let savedTmp: string | undefined;
  before(() => {
    savedTmp = process.env.TMPDIR;
  });
  after(() => {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  });

  it('creates the usual folder 0700 and uses it', async () => {
    process.env.TMPDIR = await freshOut('tmp-fresh');
    const usual = path.join(os.tmpdir(), `comms-partial-${process.getuid?.() ?? 0}`);
    const s = await openScratch(await freshOut('out-fresh'));
    assert.equal(s.dir, usual);
    assert.equal((await fs.lstat(usual)).mode & 0o777, 0o700);
    await s.release();
    assert.ok((await fs.lstat(usual)).isDirectory(), 'the usual folder is kept for the next run');
  });

  for (const [what, prepare] of [
    ['a folder with mode 0777', (p: string) => fs.mkdir(p, { mode: 0o777 }).then(() => fs.chmod(p, 0o777))],
    [
      'a symlink to a folder',
      async (p: string) => {
        await fs.mkdir(`${p}-target`, { mode: 0o700 });
        await fs.symlink(`${p}-target`, p);
      },
    ],
  ] as const) {
    it(`refuses ${what} in the usual place: a fresh private folder instead, removed afterwards`, async () => {
      const tmp = await freshOut(`tmp-${what.replace(/\W+/g, '-')}`);
      process.env.TMPDIR = tmp;
      const usual = path.join(tmp, `comms-partial-${process.getuid?.() ?? 0}`);
      await prepare(usual);
      const before = await fs.lstat(usual);
      const s = await openScratch(await freshOut(`out-${what.replace(/\W+/g, '-')}`));
      assert.notEqual(s.dir, usual);
      assert.equal(path.dirname(s.dir), tmp);
      const st = await fs.lstat(s.dir);
      assert.ok(st.isDirectory() && !st.isSymbolicLink());
      assert.equal(st.mode & 0o777, 0o700);
      const afterwards = await fs.lstat(usual);
      assert.equal(afterwards.mode, before.mode, 'the folder found there is left as it was');
      await s.release();
      await assert.rejects(fs.lstat(s.dir), { code: 'ENOENT' });
    });
  }
});
