/**
 * The layout's `index.json` (an OCI image index) as the record of manifests and tags.
 *
 * Model: each tag is one `manifests[]` entry carrying `org.opencontainers.image.ref.name`; a
 * manifest with no tag is one entry without it, so every manifest pushed stays reachable from
 * index.json (as oras-go's layout store does). A manifest that gains a tag loses its untagged
 * entry; one whose last tag moves elsewhere gets it back. Unknown fields and entries written by
 * other tools are preserved as they are.
 */
import { ProtocolError } from '../../errors.ts';
import { referrerDescriptor, type Descriptor } from '../descriptor.ts';
import { ANNOTATION_REF_NAME, MediaType } from '../mediatypes.ts';

export interface IndexDocument {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  [field: string]: unknown;
}

export function emptyIndex(): IndexDocument {
  return { schemaVersion: 2, mediaType: MediaType.ImageIndex, manifests: [] };
}

export function parseIndex(bytes: Uint8Array, where: string): IndexDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ProtocolError(`${where} is not valid JSON`, { code: 'LAYOUT_INVALID', cause: err });
  }
  const d = doc as Partial<IndexDocument> | null;
  if (d === null || typeof d !== 'object' || Array.isArray(d) || d.schemaVersion !== 2 || !Array.isArray(d.manifests)) {
    throw new ProtocolError(`${where} is not an OCI image index (schemaVersion 2 with manifests[])`, { code: 'LAYOUT_INVALID' });
  }
  for (const m of d.manifests) {
    if (m === null || typeof m !== 'object' || typeof m.digest !== 'string' || typeof m.mediaType !== 'string' || typeof m.size !== 'number') {
      throw new ProtocolError(`${where} has a manifests[] entry that is not a descriptor`, { code: 'LAYOUT_INVALID' });
    }
  }
  return d as IndexDocument;
}

export function serializeIndex(doc: IndexDocument): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(doc));
}

export function refName(entry: Descriptor): string | undefined {
  return entry.annotations?.[ANNOTATION_REF_NAME];
}

/** What resolve() answers: the manifest's identity, without the layout's own annotations. */
export function publicDescriptor(entry: Descriptor): Descriptor {
  return referrerDescriptor(entry, { artifactType: entry.artifactType });
}

function entryFor(desc: Descriptor, tag?: string): Descriptor {
  const out = publicDescriptor(desc);
  if (tag !== undefined) out.annotations = { [ANNOTATION_REF_NAME]: tag };
  return out;
}

export function findTag(doc: IndexDocument, tag: string): Descriptor | undefined {
  return doc.manifests.find((e) => refName(e) === tag);
}

export function findDigest(doc: IndexDocument, digest: string): Descriptor | undefined {
  return doc.manifests.find((e) => e.digest === digest);
}

/** Sorted tag lists of documents already listed (a document is never changed once read: updates copy it). */
const sortedTags = new WeakMap<IndexDocument, string[]>();

/** Every tag once, in lexical (code unit) order. The list is shared: do not change it. */
export function listTags(doc: IndexDocument): readonly string[] {
  const known = sortedTags.get(doc);
  if (known !== undefined) return known;
  const tags = new Set<string>();
  for (const e of doc.manifests) {
    const t = refName(e);
    if (t !== undefined) tags.add(t);
  }
  const sorted = [...tags].sort();
  sortedTags.set(doc, sorted);
  return sorted;
}

/** The position of the first tag of `sorted` that comes after `last` in lexical order. */
export function firstAfter(sorted: readonly string[], last: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) <= last) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Records a manifest without a tag, unless it is already recorded. Returns whether doc changed. */
export function recordManifest(doc: IndexDocument, desc: Descriptor): boolean {
  if (findDigest(doc, desc.digest) !== undefined) return false;
  doc.manifests.push(entryFor(desc));
  return true;
}

/** Points `tag` at `desc`, replacing the tag's previous entry. Returns whether doc changed. */
export function setTag(doc: IndexDocument, desc: Descriptor, tag: string): boolean {
  const current = doc.manifests.filter((e) => refName(e) === tag);
  if (current.length === 1 && current[0]?.digest === desc.digest) return false;
  doc.manifests = doc.manifests.filter((e) => refName(e) !== tag && !(e.digest === desc.digest && refName(e) === undefined));
  doc.manifests.push(entryFor(desc, tag));
  // A manifest whose last tag moved away stays reachable as an untagged entry.
  for (const old of current) {
    if (findDigest(doc, old.digest) === undefined) doc.manifests.push(entryFor(old));
  }
  return true;
}

/** Drops every entry (tagged or not) for `digest`. Returns whether doc changed. */
export function removeManifest(doc: IndexDocument, digest: string): boolean {
  const before = doc.manifests.length;
  doc.manifests = doc.manifests.filter((e) => e.digest !== digest);
  return doc.manifests.length !== before;
}

/** Removes `tag`; a manifest left without any entry stays reachable untagged. Returns whether doc changed. */
export function removeTag(doc: IndexDocument, tag: string): boolean {
  const current = doc.manifests.filter((e) => refName(e) === tag);
  if (current.length === 0) return false;
  doc.manifests = doc.manifests.filter((e) => refName(e) !== tag);
  for (const old of current) {
    if (findDigest(doc, old.digest) === undefined) doc.manifests.push(entryFor(old));
  }
  return true;
}

/**
 * One change to index.json, as the journal records it (one JSON object per line). Each is
 * decided by its own key alone (a tag, or a digest) and the last change of a key wins, so
 * applying a journal a second time onto a document that already holds it changes nothing: a
 * crash between writing the compacted index.json and removing the journal is harmless.
 */
export type IndexOp =
  | { op: 'tag'; tag: string; desc: Descriptor }
  | { op: 'record'; desc: Descriptor }
  | { op: 'untag'; tag: string }
  | { op: 'remove'; digest: string };

export function applyOp(doc: IndexDocument, op: IndexOp): boolean {
  switch (op.op) {
    case 'tag':
      return setTag(doc, op.desc, op.tag);
    case 'record':
      return recordManifest(doc, op.desc);
    case 'untag':
      return removeTag(doc, op.tag);
    case 'remove':
      return removeManifest(doc, op.digest);
  }
}

function isDescriptorLike(v: unknown): v is Descriptor {
  const d = v as Partial<Descriptor> | null;
  return d !== null && typeof d === 'object' && typeof d.digest === 'string' && typeof d.mediaType === 'string' && typeof d.size === 'number';
}

/** The journal lines of `bytes` (whole lines only: the caller leaves out a last line still being written). */
export function parseJournal(bytes: Uint8Array, where: string): IndexOp[] {
  const ops: IndexOp[] = [];
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let v: Partial<{ op: string; tag: unknown; desc: unknown; digest: unknown }>;
    try {
      v = JSON.parse(line) as typeof v;
    } catch (err) {
      throw new ProtocolError(`${where} has a line that is not JSON`, { code: 'LAYOUT_INVALID', cause: err });
    }
    if (v.op === 'tag' && typeof v.tag === 'string' && isDescriptorLike(v.desc)) ops.push({ op: 'tag', tag: v.tag, desc: v.desc });
    else if (v.op === 'record' && isDescriptorLike(v.desc)) ops.push({ op: 'record', desc: v.desc });
    else if (v.op === 'untag' && typeof v.tag === 'string') ops.push({ op: 'untag', tag: v.tag });
    else if (v.op === 'remove' && typeof v.digest === 'string') ops.push({ op: 'remove', digest: v.digest });
    else throw new ProtocolError(`${where} has a line that is not an index change`, { code: 'LAYOUT_INVALID' });
  }
  return ops;
}

export function serializeJournal(ops: IndexOp[]): Uint8Array {
  return new TextEncoder().encode(ops.map((op) => `${JSON.stringify(op)}\n`).join(''));
}
