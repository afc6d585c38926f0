/**
 * The send progress line: bytes read and uploaded as they happen, the rate and ETA of what is
 * uploaded over a recent window (not since the start), and no ETA claimed before any upload.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTransferProgress, transferLine } from '../../src/cli/progress.ts';

const MiB = 1024 * 1024;

function fakeTty() {
  const writes: string[] = [];
  return {
    stream: { isTTY: true, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream,
    writes,
    last: () => writes.at(-1)!.replace('\r\x1b[2K', ''),
  };
}

describe('send progress', () => {
  it('before any upload: bytes read with the read rate, and no ETA', () => {
    const line = transferLine('send', { read: 30 * MiB, done: 0, total: 100 * MiB }, { t: 0, read: 0, done: 0 }, 3000);
    assert.equal(line, 'send 100.0 MiB:  read 30.0 MiB (30%)  uploaded 0 B (0%)  reading 10.0 MiB/s');
  });

  it('once uploading: the rate and ETA of uploaded payload', () => {
    const line = transferLine('send', { read: 60 * MiB, done: 20 * MiB, total: 100 * MiB }, { t: 0, read: 0, done: 0 }, 2000);
    assert.equal(line, 'send 100.0 MiB:  read 60.0 MiB (60%)  uploaded 20.0 MiB (20%)  10.0 MiB/s  ETA 8s');
  });

  it('draws as bytes are read (well before a chunk completes), and the rate follows the recent speed', () => {
    let t = 0;
    const tty = fakeTty();
    const progress = createTransferProgress('send', { enabled: true, stream: tty.stream, now: () => t });
    // 1 MiB pieces read, nothing uploaded yet: the line moves with each redraw.
    for (let i = 1; i <= 8; i++) {
      t += 200;
      progress.update({ read: i * MiB, done: 0, total: 400 * MiB });
    }
    assert.match(tty.last(), /read 8\.0 MiB \(2%\) {2}uploaded 0 B \(0%\) {2}reading 5\.0 MiB\/s$/);
    // 20 s uploading slowly (1 MiB/s), then 5 s fast (10 MiB/s): the rate is the recent one.
    let done = 0;
    for (let i = 0; i < 20; i++) {
      t += 1000;
      done += MiB;
      progress.update({ read: 200 * MiB, done, total: 400 * MiB });
    }
    for (let i = 0; i < 5; i++) {
      t += 1000;
      done += 10 * MiB;
      progress.update({ read: 300 * MiB, done, total: 400 * MiB });
    }
    assert.match(tty.last(), /uploaded 70\.0 MiB \(17%\) {2}10\.0 MiB\/s {2}ETA 33s$/);
    progress.finish();
    assert.equal(tty.writes.at(-1), '\r\x1b[2K');
  });

  it('draws nothing off a terminal, or when disabled (--json, --quiet)', () => {
    const writes: string[] = [];
    const pipe = { isTTY: false, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream;
    createTransferProgress('send', { enabled: true, stream: pipe }).update({ read: 50 * MiB, done: 0, total: 100 * MiB });
    createTransferProgress('send', { enabled: false, stream: fakeTty().stream }).update({ read: 50 * MiB, done: 0, total: 100 * MiB });
    assert.deepEqual(writes, []);
  });
});
