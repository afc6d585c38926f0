/**
 * The agent's calls after sending a request: waitForReply resolves when a
 * reply lands (sent by another task after a delay) and rejects with a TimeoutError when none does;
 * the same for waitForReceipt. A receipt does not end a wait for a reply, nor a reply a wait for a
 * receipt. Run on docker-registry and comms serve.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { ack, reply, send, TimeoutError, waitForReceipt, waitForReply } from '../../src/index.ts';
import { ArtifactType, ExtensionAnnotation } from '../../src/protocol/constants.ts';
import { backendKinds, countingRepo, startBackend, type Backend, type CountingRepo } from '../support/referrers-backends.ts';

/** Tracks whether a promise has settled yet, without changing its outcome. */
function tracked<T>(p: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  const promise = p.finally(() => {
    done = true;
  });
  promise.catch(() => undefined);
  return { promise, settled: () => done };
}

for (const kind of backendKinds()) {
  describe(`waitForReply / waitForReceipt on ${kind}`, () => {
    let backend: Backend;
    let waiter: CountingRepo;
    let peer: CountingRepo;
    before(async () => {
      backend = await startBackend(kind);
      const ref = backend.freshRepo('wait');
      // The waiting agent and the answering one are separate clients, as they would be.
      waiter = countingRepo(ref);
      peer = countingRepo(ref);
    });
    after(async () => {
      await waiter?.close();
      await peer?.close();
      await backend?.stop();
    });

    it('waitForReply resolves with the reply once it lands; a receipt alone does not end the wait', async () => {
      const request = await send({ unsigned: true, repository: waiter.repo, recipient: 'bob', sender: 'alice', input: { text: 'question?' } });
      const wait = tracked(waitForReply(waiter.repo, request.digest, { allowUnverified: true, timeoutMs: 60_000, intervalMs: 100 }));
      const answer = (async () => {
        await delay(300);
        await ack({ unsigned: true, repository: peer.repo, forDigest: request.digest, status: 'accepted', sender: 'bob' });
        await delay(300);
        assert.equal(wait.settled(), false, 'still waiting after the receipt');
        return reply({ unsigned: true, unverifiedRecipient: true, repository: peer.repo, to: request.digest, sender: 'bob', input: { text: 'answer!' } });
      })();
      const [got, sent] = await Promise.all([wait.promise, answer]);
      assert.equal(got.descriptor.digest, sent.digest);
      assert.equal(got.descriptor.artifactType, ArtifactType.Message);
      assert.equal(got.annotations[ExtensionAnnotation.ReplyTo], request.digest);
      assert.equal(got.annotations['dockercomms.sender'], 'bob');
    });

    it('waitForReply rejects with a TimeoutError naming the message when no reply comes', async () => {
      const request = await send({ unsigned: true, repository: waiter.repo, recipient: 'bob', sender: 'alice', input: { text: 'anyone?' } });
      await ack({ unsigned: true, repository: peer.repo, forDigest: request.digest, status: 'accepted', sender: 'bob' });
      await assert.rejects(waitForReply(waiter.repo, request.digest, { allowUnverified: true, timeoutMs: 400, intervalMs: 100 }), (err: unknown) => {
        assert.ok(err instanceof TimeoutError, `a TimeoutError, got ${String(err)}`);
        assert.equal(err.code, 'TIMEOUT');
        assert.match(err.message, new RegExp(`no reply to ${request.digest}`));
        return true;
      });
    });

    it('waitForReceipt resolves with the receipt once it lands; a reply alone does not end the wait', async () => {
      const request = await send({ unsigned: true, repository: waiter.repo, recipient: 'bob', sender: 'alice', input: { text: 'did you get this?' } });
      const wait = tracked(waitForReceipt(waiter.repo, request.digest, { allowUnverified: true, timeoutMs: 60_000, intervalMs: 100 }));
      const answer = (async () => {
        await delay(300);
        await reply({
          unsigned: true,
          unverifiedRecipient: true,
          repository: peer.repo,
          to: request.digest,
          sender: 'bob',
          input: { text: 'replying, not acking' },
        });
        await delay(300);
        assert.equal(wait.settled(), false, 'still waiting after the reply');
        return ack({ unsigned: true, repository: peer.repo, forDigest: request.digest, status: 'rejected', reason: 'not for me', sender: 'bob' });
      })();
      const [got, receipt] = await Promise.all([wait.promise, answer]);
      assert.equal(got.descriptor.digest, receipt.digest);
      assert.equal(got.descriptor.artifactType, ArtifactType.Receipt);
      assert.equal(got.annotations['dockercomms.receipt.for'], request.digest);
      assert.equal(got.annotations['dockercomms.receipt.status'], 'rejected');
      assert.equal(got.annotations['dockercomms.receipt.reason'], 'not for me');
    });

    it('waitForReceipt rejects with a TimeoutError when no receipt comes, leaving no listener on its signal', async () => {
      const request = await send({ unsigned: true, repository: waiter.repo, recipient: 'bob', sender: 'alice', input: { text: 'silence' } });
      const controller = new AbortController();
      // Many short polls: each must take its abort listener away again.
      await assert.rejects(
        waitForReceipt(waiter.repo, request.digest, { allowUnverified: true, timeoutMs: 600, intervalMs: 5, signal: controller.signal }),
        (err: unknown) => {
          assert.ok(err instanceof TimeoutError, `a TimeoutError, got ${String(err)}`);
          assert.equal(err.code, 'TIMEOUT');
          assert.match(err.message, new RegExp(`no receipt to ${request.digest}`));
          return true;
        },
      );
      assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    });

    it('an aborted wait stops at once with the abort, not a timeout', async () => {
      const request = await send({ unsigned: true, repository: waiter.repo, recipient: 'bob', sender: 'alice', input: { text: 'never mind' } });
      const controller = new AbortController();
      const wait = waitForReply(waiter.repo, request.digest, { allowUnverified: true, timeoutMs: 60_000, intervalMs: 100, signal: controller.signal });
      setTimeout(() => controller.abort(new Error('caller gave up')), 300);
      await assert.rejects(wait, (err: unknown) => !(err instanceof TimeoutError));
    });
  });
}
