/**
 * thread: the message and everything that refers to it — replies (recursively), receipts and
 * signature bundles — as a tree. One tag listing serves the whole walk.
 *
 * With a trust policy, each message, reply and receipt carries its verdict (verdict.ts): verified
 * as whom, unsigned, or invalid and why; `verifiedOnly` leaves out every node that is not verified
 * (and what hangs below it). Children are ordered verified first, then by their claimed time.
 */
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import { ManifestFormatError, readImageManifest } from '../oci/manifest-json.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { NotFoundError, ProtocolError } from '../errors.ts';
import type { TrustPolicy } from '../trust/verify.ts';
import { findReferrers } from './discover.ts';
import { TagSnapshot } from './tag-snapshot.ts';
import { judgeReferrer, verifyArtifact, type TrustStatus } from './verdict.ts';

export type ThreadNodeKind = 'message' | 'reply' | 'receipt' | 'bundle' | 'other';

export interface ThreadNode {
  digest: string;
  kind: ThreadNodeKind;
  artifactType: string | undefined;
  sender?: string;
  recipient?: string;
  createdAt?: string;
  filename?: string;
  /** Receipts: accepted / rejected. */
  status?: string;
  /** Receipts: what the receipt says about the message's signature (`dockercomms.receipt.verified`), a claim. */
  receiptVerified?: string;
  /** Receipts: the reason the receipt gives (`dockercomms.receipt.reason`). */
  receiptReason?: string;
  /** The trust verdict (bundles: `unchecked`, they are signatures, not statements). */
  trust: TrustStatus;
  /** True only when the node is verified under the policy. */
  verified: boolean;
  /** The verified identity (see Verdict.identity). */
  signer?: string;
  /** Why the node is not verified. */
  reason?: string;
  /**
   * Receipts whose annotations do not name who acknowledged: dockercomms v1.0's `ack` writes
   * `unknown` for both parties, and its `recv` copies the message's own sender and recipient, so
   * its "sender" is the very party the receipt answers. `sender` and `recipient` are then left
   * out (the raw values stay in `annotations`) rather than presented as who sent the receipt.
   */
  partiesUnnamed?: true;
  annotations: Record<string, string>;
  children: ThreadNode[];
}

export interface ThreadOptions extends OperationOptions {
  maxDepth?: number;
  snapshot?: TagSnapshot;
  /** Verify each message, reply and receipt; without it every node is `unchecked`. */
  policy?: TrustPolicy;
  /** Leave out nodes that are not verified (bundles of verified nodes stay). */
  verifiedOnly?: boolean;
}

export async function thread(repo: Repository, digest: string, options: ThreadOptions = {}): Promise<ThreadNode> {
  const root = await repo.fetchManifest(digest, options);
  const snapshot = options.snapshot ?? (await TagSnapshot.load(repo, options));
  const visited = new Set<string>();
  const maxDepth = options.maxDepth ?? 32;

  const judge = async (node: ThreadNode, desc: Descriptor, bytes: Uint8Array, parent: { digest: string; recipient?: string } | undefined) => {
    if (node.kind === 'bundle' || node.kind === 'other') return;
    let v = await verifyArtifact(repo, desc, bytes, options.policy, { snapshot, signal: options.signal });
    if (parent !== undefined) v = judgeReferrer(v, bytes, parent);
    node.trust = v.status;
    node.verified = v.verified;
    if (v.verified && v.identity !== undefined) node.signer = v.identity;
    else delete node.signer;
    if (!v.verified && v.reason !== undefined) node.reason = v.reason;
  };
  const build = async (
    desc: Descriptor,
    bytes: Uint8Array,
    manifest: ImageManifest,
    depth: number,
    parent: ThreadNode | undefined,
  ): Promise<ThreadNode | undefined> => {
    visited.add(desc.digest);
    const node = nodeOf(desc.digest, manifest, parent);
    await judge(
      node,
      desc,
      bytes,
      parent === undefined ? undefined : { digest: parent.digest, ...(parent.recipient !== undefined ? { recipient: parent.recipient } : {}) },
    );
    if (options.verifiedOnly && !node.verified && node.kind !== 'bundle' && parent !== undefined) return undefined;
    if (depth >= maxDepth) return node;
    // Replies go back to the sender (or onward to the recipient): look in both inboxes.
    const people = [node.sender, node.recipient].filter((p): p is string => p !== undefined);
    const refs = await findReferrers(repo, desc, { snapshot, replies: true, replyRecipients: people, signal: options.signal });
    for (const r of refs) {
      if (visited.has(r.digest)) continue;
      let fetched;
      try {
        fetched = await repo.fetchManifest(r.digest, options);
        parse(fetched.bytes, r.digest);
      } catch (err) {
        // Listed but gone, or not a manifest (anyone who can push can list junk): not part of the thread.
        if (err instanceof NotFoundError || err instanceof ProtocolError) continue;
        throw err;
      }
      const child = await build(fetched.descriptor, fetched.bytes, parse(fetched.bytes, r.digest), depth + 1, node);
      if (child !== undefined) node.children.push(child);
    }
    node.children.sort(
      (a, b) => Number(b.verified) - Number(a.verified) || (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.digest.localeCompare(b.digest),
    );
    return node;
  };
  const tree = await build(root.descriptor, root.bytes, parse(root.bytes, digest), 0, undefined);
  return tree!;
}

function nodeOf(digest: string, m: ImageManifest, parent: ThreadNode | undefined): ThreadNode {
  const isRoot = parent === undefined;
  const a = m.annotations ?? {};
  const artifactType = m.artifactType ?? m.config?.mediaType;
  const kind: ThreadNodeKind =
    artifactType === ArtifactType.Message
      ? isRoot || m.subject === undefined
        ? 'message'
        : 'reply'
      : artifactType === ArtifactType.Receipt
        ? 'receipt'
        : artifactType === ArtifactType.Bundle
          ? 'bundle'
          : 'other';
  const node: ThreadNode = { digest, kind, artifactType, trust: 'unchecked', verified: false, annotations: a, children: [] };
  const set = (k: keyof ThreadNode, key: string) => {
    if (a[key] !== undefined) (node as unknown as Record<string, unknown>)[k] = a[key];
  };
  set('sender', Annotation.Sender);
  set('recipient', Annotation.Recipient);
  set('createdAt', Annotation.CreatedAt);
  set('filename', Annotation.Filename);
  set('status', Annotation.ReceiptStatus);
  set('receiptVerified', Annotation.ReceiptVerified);
  set('receiptReason', Annotation.ReceiptReason);
  if (node.kind === 'receipt' && parent !== undefined && !namesItsAcknowledger(node, parent)) {
    delete node.sender;
    delete node.recipient;
    node.partiesUnnamed = true;
  }
  return node;
}

/**
 * Whether a receipt's `dockercomms.sender` can stand for who acknowledged the message it answers:
 * not `unknown` (v1.0's `ack`), and not the message's own sender copied over (v1.0's `recv`, which
 * also copies the recipient) — a message's sender does not acknowledge their own message, unless
 * they sent it to themselves.
 */
function namesItsAcknowledger(receipt: ThreadNode, message: ThreadNode): boolean {
  if (receipt.sender === undefined || receipt.sender === '' || receipt.sender === 'unknown') return false;
  if (receipt.sender === message.sender && message.sender !== message.recipient) return false;
  return true;
}

function parse(bytes: Uint8Array, digest: string): ImageManifest {
  try {
    return readImageManifest(bytes);
  } catch (cause) {
    if (!(cause instanceof ManifestFormatError)) throw cause;
    throw new ProtocolError(`manifest ${digest}: ${cause.message}`, { cause, code: 'MANIFEST_INVALID' });
  }
}
