/**
 * Replies racing on docker-registry (no Referrers API): 8 writers, each with a client of its own,
 * reply to one message at the same moment, so all 8 read-modify-write its `sha256-<hex>`
 * tag-schema index together. Each reply is tagged `reply-<hex12>-…` before its index update, which
 * is checked against those tags (SPEC §9.1): every reply must be in the index afterwards, not only
 * found through its tags, and the uncontended reply that follows must not wait (no read-back).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { findReferrers, send } from '../../src/index.ts';
import { referrersTag } from '../../src/oci/remote/referrers.ts';
import { readReferrersIndex } from '../../src/oci/remote/tag-schema.ts';
import { ArtifactType } from '../../src/protocol/constants.ts';
import { replyTagPrefix } from '../../src/protocol/tags.ts';
import { countingRepo, startBackend, type Backend } from '../support/referrers-backends.ts';
import { requireTool, skipMessage } from '../support/tools.ts';

const WRITERS = 8;
const ROUNDS = 3;

if (!requireTool('docker-registry')) {
  it('replies racing on docker-registry', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe(`${WRITERS} replies to one message at once on docker-registry`, () => {
    let backend: Backend;
    before(async () => {
      backend = await startBackend('docker-registry');
    });
    after(() => backend?.stop());

    it(`every reply is in the tag-schema index and under its reply- tag, in each of ${ROUNDS} rounds; a lone reply then costs no read-back`, async () => {
      const ref = backend.freshRepo('replies');
      const writers = Array.from({ length: WRITERS }, () => countingRepo(ref));
      try {
        for (let round = 1; round <= ROUNDS; round++) {
          const question = await send({
            unsigned: true,
            repository: writers[0]!.repo,
            recipient: 'bob',
            sender: 'alice',
            input: { text: `question ${round}` },
          });
          const replies = await Promise.all(
            writers.map((w, i) =>
              send({
                unsigned: true,
                repository: w.repo,
                recipient: 'alice',
                sender: `bob-${i}`,
                subject: question.descriptor,
                input: { text: `answer ${i}` },
              }),
            ),
          );
          const digests = replies.map((r) => r.digest).sort();
          assert.equal(new Set(digests).size, WRITERS);
          const index = await readReferrersIndex(writers[0]!.repo, referrersTag(question.digest));
          const indexed = index.manifests.map((d) => d.digest);
          assert.deepEqual(
            digests.filter((d) => !indexed.includes(d)),
            [],
            `round ${round}: replies missing from the tag-schema index`,
          );
          const tagged: string[] = [];
          await writers[0]!.repo.tags((page) => void tagged.push(...page.filter((t) => t.startsWith(replyTagPrefix(question.digest)))));
          assert.equal(tagged.length, WRITERS, `round ${round}: one reply- tag per reply`);
          const found = await findReferrers(writers[0]!.repo, question.descriptor, { artifactType: ArtifactType.Message, source: 'tag', replies: true });
          assert.deepEqual(found.map((d) => d.digest).sort(), digests, 'each reply is found through its reply- tag alone');
        }
        // Alone: its tag, its inbox tag, the read-modify-write of the index, one listing, one read.
        const question = await send({ unsigned: true, repository: writers[0]!.repo, recipient: 'bob', sender: 'alice', input: { text: 'lone' } });
        const w = writers[1]!;
        const before = w.requests.length;
        await send({ unsigned: true, repository: w.repo, recipient: 'alice', sender: 'bob', subject: question.descriptor, input: { text: 'lone answer' } });
        const indexPath = new RegExp(`/manifests/${referrersTag(question.digest)}$`);
        const sent = w.requests.slice(before);
        assert.equal(
          sent.filter((r) => r.method === 'GET' && indexPath.test(new URL(r.url).pathname)).length,
          2,
          'the index is read twice: before the write, and after the listing',
        );
        assert.equal(sent.filter((r) => r.method === 'GET' && /\/tags\/list/.test(new URL(r.url).pathname)).length, 1, 'one tag listing');
      } finally {
        await Promise.all(writers.map((w) => w.close()));
      }
    });
  });
}
