/**
 * onStep reports a stage that fails as `failed` (and the operation still throws its own error),
 * and a callback that throws changes nothing about the operation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OciLayout, ProtocolError, send, type Repository } from '../../src/index.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

describe('onStep', () => {
  let dir: TempDir;
  before(async () => {
    dir = await tempDir('comms-steps-');
  });
  after(async () => {
    await dir?.cleanup();
  });

  it('a stage that fails is reported as failed, and the operation rejects with its error', async () => {
    const layout = await OciLayout.open(join(dir.path, 'fail'), { create: true });
    const refusing = new Proxy(layout, {
      get(target, prop, receiver) {
        if (prop === 'pushManifest') return async () => Promise.reject(new ProtocolError('refused by the test', { code: 'MANIFEST_INVALID' }));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Repository;
    const events: string[] = [];
    await assert.rejects(
      send({
        unsigned: true,
        repository: refusing,
        recipient: 'bob',
        sender: 'alice',
        input: { text: 'x' },
        onStep: (step, state) => events.push(`${step}:${state}`),
      }),
      (e: { code?: string }) => e.code === 'MANIFEST_INVALID',
    );
    assert.ok(events.includes('upload:done'));
    assert.deepEqual(events.slice(-2), ['push-manifest:started', 'push-manifest:failed']);
  });

  it('a callback that throws does not stop the send', async () => {
    const layout = await OciLayout.open(join(dir.path, 'throwing'), { create: true });
    let calls = 0;
    const sent = await send({
      unsigned: true,
      repository: layout,
      recipient: 'bob',
      sender: 'alice',
      input: { text: 'still sent' },
      onStep: () => {
        calls++;
        throw new Error('callback bug');
      },
    });
    assert.ok(calls > 4);
    assert.equal((await layout.resolve(sent.tag)).digest, sent.digest);
  });
});
