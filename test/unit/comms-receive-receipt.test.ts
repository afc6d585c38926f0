import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { receive } from '../../src/comms/receive.ts';
import { send } from '../../src/comms/send.ts';
import { AuthError } from '../../src/errors.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import type { Repository } from '../../src/oci/target.ts';

/** A mailbox that lets us read and deliver but refuses the receipt push (no push permission). */
function refusingReceipts(layout: OciLayout): Repository {
  return new Proxy(layout, {
    get(target, prop, receiver) {
      if (prop === 'pushManifest') {
        return async (...args: Parameters<Repository['pushManifest']>) => {
          if (args[2]?.startsWith('receipt-')) throw new AuthError('push denied for this test');
          return target.pushManifest(...args);
        };
      }
      if (prop === 'pushReferrer') {
        return async (...args: Parameters<Repository['pushReferrer']>) => {
          if (args[3]?.startsWith('receipt-')) throw new AuthError('push denied for this test');
          return target.pushReferrer(...args);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

test('a receipt that cannot be pushed leaves the delivered message delivered and says why', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'comms-rcpt-'));
  try {
    const layout = await OciLayout.open(path.join(dir, 'mb'), { create: true });
    await send({ unsigned: true, repository: layout, recipient: 'bob', sender: 'alice', input: { text: 'hello' } });
    const out = path.join(dir, 'in');
    const r = await receive({ repository: refusingReceipts(layout), me: 'bob', outDir: out, verify: false, writeReceipt: true });
    assert.equal(r.failures.length, 0, 'the message is not refused because its receipt failed');
    assert.equal(r.messages.length, 1);
    assert.ok(r.messages[0]!.receiptError instanceof AuthError);
    assert.equal(r.messages[0]!.receipt, undefined);
    assert.deepEqual(await readdir(out), ['message.txt']);
    assert.equal(await readFile(path.join(out, 'message.txt'), 'utf8'), 'hello');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
