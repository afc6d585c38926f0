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

function addTo<K>(map: Map<K, Set<Descriptor>>, key: K, entry: Descriptor): void {
  const set = map.get(key);
  if (set === undefined) map.set(key, new Set([entry]));
  else set.add(entry);
}

function removeFrom<K>(map: Map<K, Set<Descriptor>>, key: K, entry: Descriptor): void {
  const set = map.get(key);
  if (set === undefined) return;
  set.delete(entry);
  if (set.size === 0) map.delete(key);
}

function first(set: Set<Descriptor> | undefined): Descriptor | undefined {
  return set === undefined ? undefined : (set.values().next().value as Descriptor | undefined);
}

/**
 * index.json in memory: the entries in document order, with maps by tag, by digest and of the
 * untagged entries by digest beside them, so a lookup or a change costs O(1) however many entries
 * there are (a change touches only the entries of its own tag or digest). The model is changed in
 * place; what is handed out is never changed afterwards (the sorted tag list is a new array after
 * a change, `entries()` a copy), so a reader paging through a list keeps the list it started with.
 */
export class IndexModel {
  /** The document's fields besides `manifests`, kept as read (with their order). */
  private readonly head: IndexDocument;
  /** Every entry once, in document order (a Set keeps insertion order and deletes in O(1)). */
  private readonly all = new Set<Descriptor>();
  private readonly byTag = new Map<string, Set<Descriptor>>();
  private readonly byDigest = new Map<string, Set<Descriptor>>();
  private readonly untaggedByDigest = new Map<string, Set<Descriptor>>();
  /** The tags in lexical order as of the last `tags()`, and the tags changed since then. */
  private sortedTags: readonly string[] = [];
  private readonly tagsChanged = new Set<string>();

  constructor(doc: IndexDocument = emptyIndex()) {
    this.head = { ...doc, manifests: [] };
    for (const entry of doc.manifests) this.add(entry);
  }

  /** How many entries index.json has. */
  get size(): number {
    return this.all.size;
  }

  private add(entry: Descriptor): void {
    this.all.add(entry);
    addTo(this.byDigest, entry.digest, entry);
    const tag = refName(entry);
    if (tag === undefined) {
      addTo(this.untaggedByDigest, entry.digest, entry);
    } else {
      addTo(this.byTag, tag, entry);
      this.tagsChanged.add(tag);
    }
  }

  private drop(entry: Descriptor): void {
    this.all.delete(entry);
    removeFrom(this.byDigest, entry.digest, entry);
    const tag = refName(entry);
    if (tag === undefined) {
      removeFrom(this.untaggedByDigest, entry.digest, entry);
    } else {
      removeFrom(this.byTag, tag, entry);
      this.tagsChanged.add(tag);
    }
  }

  /** The first entry carrying `tag`. */
  findTag(tag: string): Descriptor | undefined {
    return first(this.byTag.get(tag));
  }

  /** The first entry (tagged or not) for `digest`. */
  findDigest(digest: string): Descriptor | undefined {
    return first(this.byDigest.get(digest));
  }

  /**
   * Every tag once, in lexical (code unit) order. The list is shared and never changed: a change
   * makes the next call build a new one, by merging the changed tags (sorted) into the previous
   * list — O(n + k log k) for k changed tags, paid by the lister, not by each change.
   */
  tags(): readonly string[] {
    if (this.tagsChanged.size === 0) return this.sortedTags;
    const changed = this.tagsChanged;
    const added = [...changed].filter((t) => this.byTag.has(t)).sort();
    const kept = this.sortedTags;
    const merged: string[] = [];
    let j = 0;
    for (const t of kept) {
      if (changed.has(t)) continue;
      while (j < added.length && (added[j] as string) < t) merged.push(added[j++] as string);
      merged.push(t);
    }
    while (j < added.length) merged.push(added[j++] as string);
    this.sortedTags = merged;
    changed.clear();
    return merged;
  }

  /** The entries in document order (a copy). */
  entries(): Descriptor[] {
    return [...this.all];
  }

  /** The document to write as index.json. */
  toDocument(): IndexDocument {
    return { ...this.head, manifests: [...this.all] };
  }

  /** Records a manifest without a tag, unless it is already recorded. Returns whether the index changed. */
  recordManifest(desc: Descriptor): boolean {
    if (this.byDigest.has(desc.digest)) return false;
    this.add(entryFor(desc));
    return true;
  }

  /** Points `tag` at `desc`, replacing the tag's previous entry. Returns whether the index changed. */
  setTag(desc: Descriptor, tag: string): boolean {
    const current = [...(this.byTag.get(tag) ?? [])];
    if (current.length === 1 && current[0]?.digest === desc.digest) return false;
    for (const old of current) this.drop(old);
    for (const untagged of [...(this.untaggedByDigest.get(desc.digest) ?? [])]) this.drop(untagged);
    this.add(entryFor(desc, tag));
    this.keepReachable(current);
    return true;
  }

  /** Drops every entry (tagged or not) for `digest`. Returns whether the index changed. */
  removeManifest(digest: string): boolean {
    const entries = [...(this.byDigest.get(digest) ?? [])];
    for (const e of entries) this.drop(e);
    return entries.length > 0;
  }

  /** Removes `tag`; a manifest left without any entry stays reachable untagged. Returns whether the index changed. */
  removeTag(tag: string): boolean {
    const current = [...(this.byTag.get(tag) ?? [])];
    for (const old of current) this.drop(old);
    this.keepReachable(current);
    return current.length > 0;
  }

  /** A manifest whose last tag moved away or went stays reachable as an untagged entry. */
  private keepReachable(removed: Descriptor[]): void {
    for (const old of removed) {
      if (!this.byDigest.has(old.digest)) this.add(entryFor(old));
    }
  }

  apply(op: IndexOp): boolean {
    switch (op.op) {
      case 'tag':
        return this.setTag(op.desc, op.tag);
      case 'record':
        return this.recordManifest(op.desc);
      case 'untag':
        return this.removeTag(op.tag);
      case 'remove':
        return this.removeManifest(op.digest);
    }
  }
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
