import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { send } from '../../src/comms/send.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';

test('send removes spool folders left by a killed send (dead pid) and keeps live ones', async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'comms-spool-test-'));
  try {
    const spool = path.join(root, 'spool');
    const dead = path.join(spool, 'comms-send-2147483646-abcDEF');
    const live = path.join(spool, `comms-send-${process.ppid}-xyzXYZ`);
    await mkdir(dead, { recursive: true });
    await mkdir(live, { recursive: true });
    await writeFile(path.join(dead, 'chunk-0'), 'left behind');
    const repository = await OciLayout.open(path.join(root, 'mailbox'), { create: true });
    await send({ unsigned: true, repository, recipient: 'bob', sender: 'alice', input: { text: 'hi' }, spoolDir: spool });
    const left = await readdir(spool);
    assert.deepEqual(left.sort(), [path.basename(live)], "the dead send's folder is gone, the live one and our own are not there");
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
