/**
 * The layout's index.json in memory (IndexModel): each change costs the same however many entries
 * the index has, it agrees with the plain reading of the index model (one entry per tag, one per
 * untagged manifest, entries of other tools kept), and what it hands out never changes afterwards.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Descriptor } from '../../src/oci/descriptor.ts';
import { emptyIndex, type IndexDocument, IndexModel, type IndexOp, refName } from '../../src/oci/layout/index-file.ts';
import { ANNOTATION_REF_NAME, MediaType } from '../../src/oci/mediatypes.ts';

function digest(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

function desc(n: number): Descriptor {
  return { mediaType: MediaType.ImageManifest, digest: digest(n), size: 100 + (n % 7) };
}

function tagged(n: number, tag: string): Descriptor {
  return { ...desc(n), annotations: { [ANNOTATION_REF_NAME]: tag } };
}

/**
 * An index of `n` tagged entries whose every property read is counted: how many entries a change
 * looks at, whatever data structure does the looking.
 */
function countedIndex(n: number): { doc: IndexDocument; reads: { count: number } } {
  const reads = { count: 0 };
  const doc = emptyIndex();
  for (let i = 0; i < n; i++) {
    doc.manifests.push(
      new Proxy(tagged(i, `t-${String(i).padStart(6, '0')}`), {
        get(target, prop, receiver) {
          reads.count += 1;
          return Reflect.get(target, prop, receiver);
        },
      }),
    );
  }
  return { doc, reads };
}

/** The entry reads of a round of changes and lookups on an index of `n` entries. */
function readsOfChanges(n: number): number {
  const { doc, reads } = countedIndex(n);
  const index = new IndexModel(doc);
  index.tags();
  reads.count = 0;
  index.setTag(desc(n + 1), 'new-tag'); // a new tag
  index.setTag(desc(n + 2), 't-000003'); // a tag moved to another manifest: its old one stays untagged
  index.setTag(desc(n + 2), 't-000003'); // the same again: no change
  index.recordManifest(desc(n + 3));
  index.recordManifest(desc(5)); // already recorded
  index.removeTag('t-000007');
  index.removeManifest(digest(9));
  index.findTag('t-000011');
  index.findDigest(digest(12));
  index.findTag('absent');
  return reads.count;
}

describe('IndexModel', () => {
  it('a tag push, a move, an untag, a removal and the lookups read as many entries with 100,000 entries as with 100', () => {
    const small = readsOfChanges(100);
    const large = readsOfChanges(100_000);
    assert.ok(small < 100, `the changes read ${small} entries of 100`);
    assert.equal(large, small, 'the number of entries read does not grow with the index');
  });

  it('applies changes as the plain reading of the model does (one entry per tag, one per untagged manifest, order kept)', () => {
    // The reference: the index as a list, each change decided by scanning it.
    const ref: Descriptor[] = [
      // Entries another tool wrote: a tag twice, a manifest untagged twice, a field we do not use.
      tagged(1, 'dup'),
      tagged(2, 'dup'),
      desc(3),
      desc(3),
      { ...tagged(4, 'other'), platform: { os: 'linux' } } as Descriptor,
    ];
    const entryFor = (d: Descriptor, tag?: string): Descriptor => {
      const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
      if (tag !== undefined) out.annotations = { [ANNOTATION_REF_NAME]: tag };
      return out;
    };
    const refApply = (list: Descriptor[], op: IndexOp): Descriptor[] => {
      const keep = (old: Descriptor[], out: Descriptor[]): Descriptor[] => {
        for (const o of old) if (!out.some((e) => e.digest === o.digest)) out.push(entryFor(o));
        return out;
      };
      switch (op.op) {
        case 'tag': {
          const current = list.filter((e) => refName(e) === op.tag);
          if (current.length === 1 && current[0]?.digest === op.desc.digest) return list;
          const out = list.filter((e) => refName(e) !== op.tag && !(e.digest === op.desc.digest && refName(e) === undefined));
          out.push(entryFor(op.desc, op.tag));
          return keep(current, out);
        }
        case 'record':
          return list.some((e) => e.digest === op.desc.digest) ? list : [...list, entryFor(op.desc)];
        case 'untag':
          return keep(
            list.filter((e) => refName(e) === op.tag),
            list.filter((e) => refName(e) !== op.tag),
          );
        case 'remove':
          return list.filter((e) => e.digest !== op.digest);
      }
    };
    const index = new IndexModel({ ...emptyIndex(), manifests: [...ref], annotations: { kept: 'yes' } });
    let list = ref;
    // A fixed pseudo-random sequence over few tags and digests, so changes collide often.
    let seed = 7;
    const next = (m: number): number => {
      // xorshift32
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % m;
    };
    const seen = new Set<string>();
    const tags = ['a', 'b', 'c', 'dup', 'other', 'z'];
    for (let i = 0; i < 3000; i++) {
      const k = next(4);
      const op: IndexOp =
        k === 0
          ? { op: 'tag', tag: tags[next(tags.length)] as string, desc: desc(next(8)) }
          : k === 1
            ? { op: 'record', desc: desc(next(8)) }
            : k === 2
              ? { op: 'untag', tag: tags[next(tags.length)] as string }
              : { op: 'remove', digest: digest(next(8)) };
      const after = refApply(list, op);
      const changed = JSON.stringify(after) !== JSON.stringify(list);
      seen.add(`${op.op} ${changed}`);
      assert.equal(index.apply(op), changed, `change ${i} (${JSON.stringify(op)}) reports whether it changed the index`);
      list = after;
      assert.deepEqual(index.entries(), list, `after change ${i}: ${JSON.stringify(op)}`);
      assert.deepEqual(index.tags(), [...new Set(list.map(refName).filter((t) => t !== undefined))].sort());
    }
    assert.equal(seen.size, 8, `every kind of change, with and without effect: ${[...seen].join(', ')}`);
    const doc = index.toDocument();
    assert.deepEqual(doc.annotations, { kept: 'yes' });
    assert.deepEqual(doc.manifests, list);
  });

  it('a tag list handed out is never changed by later changes', () => {
    const index = new IndexModel();
    index.setTag(desc(1), 'b');
    index.setTag(desc(2), 'd');
    const before = index.tags();
    index.setTag(desc(3), 'a');
    index.setTag(desc(3), 'c');
    index.removeTag('d');
    assert.deepEqual(before, ['b', 'd']);
    assert.deepEqual(index.tags(), ['a', 'b', 'c']);
    assert.equal(index.tags(), index.tags(), 'the same list while nothing changes');
  });
});
