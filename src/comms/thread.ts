/**
 * thread: the message and everything that refers to it — replies (recursively), receipts and
 * signature bundles — as a tree. One tag listing serves the whole walk.
 */
import type { Descriptor, ImageManifest } from '../oci/descriptor.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { Annotation, ArtifactType } from '../protocol/constants.ts';
import { ProtocolError } from '../errors.ts';
import { findReferrers } from './discover.ts';
import { TagSnapshot } from './tag-snapshot.ts';

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
  verified?: string;
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
}

export async function thread(repo: Repository, digest: string, options: ThreadOptions = {}): Promise<ThreadNode> {
  const root = await repo.fetchManifest(digest, options);
  const snapshot = options.snapshot ?? (await TagSnapshot.load(repo, options));
  const visited = new Set<string>();
  const maxDepth = options.maxDepth ?? 32;

  const build = async (desc: Descriptor, manifest: ImageManifest, depth: number, parent: ThreadNode | undefined): Promise<ThreadNode> => {
    visited.add(desc.digest);
    const node = nodeOf(desc.digest, manifest, parent);
    if (depth >= maxDepth) return node;
    // Replies go back to the sender (or onward to the recipient): look in both inboxes.
    const people = [node.sender, node.recipient].filter((p): p is string => p !== undefined);
    const refs = await findReferrers(repo, desc, { snapshot, replyRecipients: people, signal: options.signal });
    for (const r of refs) {
      if (visited.has(r.digest)) continue;
      const { bytes, descriptor } = await repo.fetchManifest(r.digest, options);
      node.children.push(await build(descriptor, parse(bytes, r.digest), depth + 1, node));
    }
    node.children.sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.digest.localeCompare(b.digest));
    return node;
  };
  return build(root.descriptor, parse(root.bytes, digest), 0, undefined);
}

function nodeOf(digest: string, m: ImageManifest, parent: ThreadNode | undefined): ThreadNode {
  const isRoot = parent === undefined;
  const a = m.annotations ?? {};
  const artifactType = m.artifactType ?? m.config?.mediaType;
  const kind: ThreadNodeKind =
    artifactType === ArtifactType.Message ? (isRoot || m.subject === undefined ? 'message' : 'reply')
    : artifactType === ArtifactType.Receipt ? 'receipt'
    : artifactType === ArtifactType.Bundle ? 'bundle'
    : 'other';
  const node: ThreadNode = { digest, kind, artifactType, annotations: a, children: [] };
  const set = (k: keyof ThreadNode, key: string) => {
    if (a[key] !== undefined) (node as unknown as Record<string, unknown>)[k] = a[key];
  };
  set('sender', Annotation.Sender);
  set('recipient', Annotation.Recipient);
  set('createdAt', Annotation.CreatedAt);
  set('filename', Annotation.Filename);
  set('status', Annotation.ReceiptStatus);
  set('verified', Annotation.ReceiptVerified);
  set('reason', Annotation.ReceiptReason);
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
    return JSON.parse(new TextDecoder().decode(bytes)) as ImageManifest;
  } catch (cause) {
    throw new ProtocolError(`manifest ${digest} is not JSON`, { cause, code: 'MANIFEST_INVALID' });
  }
}
