/**
 * ack: a receipt for a message — accepted or rejected, verified or not, with an optional reason —
 * pushed under the v1.0 receipt tag (`receipt-<hex12>-<unix>-<rand6>`, so a v1.0 reader finds it)
 * AND with `subject` = the message (a comms extension), so it is found through referrers.
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { parseDigest } from '../oci/digest.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { ArtifactType, DEFAULT_TTL_SECONDS } from '../protocol/constants.ts';
import { buildManifest, receiptAnnotations } from '../protocol/manifest.ts';
import { receiptTag } from '../protocol/tags.ts';
import { parseMessageManifest } from '../protocol/validate.ts';
import type { MessageSigner } from '../trust/signer.ts';
import { UsageError } from '../errors.ts';
import type { PushedBundle } from './bundle.ts';
import { pushArtifact } from './push-artifact.ts';
import { AUDIT_SCHEMA, clientInfo, prepareAuditDir, writeAuditReceipt } from './audit.ts';
import type { OnStep } from './steps.ts';
import { checkSigning } from './send.ts';
import { resolveSender } from './sender.ts';
import type { TrustFile } from '../trust/trust-file.ts';

export type ReceiptStatus = 'accepted' | 'rejected';

export interface AckOptions extends OperationOptions {
  repository: Repository;
  /** The message manifest digest (`sha256:…`). */
  forDigest: string;
  status: ReceiptStatus;
  verified?: boolean;
  reason?: string;
  /** Who acknowledges (default: the identity `trust` binds the signer to, else COMMS_SENDER, else the keyless identity). */
  sender?: string;
  /** The trust file, to find the identity the signer is bound to (the default sender). */
  trust?: TrustFile;
  /** Whom the receipt is for (default: the message's sender). */
  recipient?: string;
  ttlSeconds?: number;
  /** Signs the receipt, as messages are signed. Required unless `unsigned: true`. */
  signer?: MessageSigner;
  /** Push the receipt unsigned, explicitly: a verifying reader does not count it. */
  unsigned?: boolean;
  now?: () => Date;
  /** The message's descriptor and bytes when the caller already holds them (recv does). */
  message?: { descriptor: Descriptor; bytes: Uint8Array };
  /** Counts tag-schema writes (tests and --verbose). */
  onIndexWrite?: (attempt: number) => void;
  /** Called as each stage starts and ends: push-manifest, index, tag, sign, push-bundle, write-receipt. */
  onStep?: OnStep;
  /** Write an audit receipt (a JSON file) for this receipt push into this folder (see audit.ts). */
  auditDir?: string;
}

export interface AckResult {
  digest: string;
  tag: string;
  forDigest: string;
  status: ReceiptStatus;
  verified: boolean;
  indexedBy: 'registry' | 'tag-schema' | 'tag-only';
  descriptor: Descriptor;
  bundle?: PushedBundle;
}

export async function ack(options: AckOptions): Promise<AckResult> {
  const startedAt = new Date();
  const repo = options.repository;
  const onStep = options.onStep;
  // A bad audit folder is refused before anything is pushed.
  if (options.auditDir !== undefined) await prepareAuditDir(options.auditDir);
  parseDigest(options.forDigest);
  if (options.status !== 'accepted' && options.status !== 'rejected') {
    throw new UsageError(`status must be accepted or rejected, got ${String(options.status)}`, { option: 'status' });
  }
  checkSigning(options, 'ack');
  const sender = await resolveSender({ sender: options.sender, signer: options.signer, trust: options.trust, signal: options.signal });
  const message = options.message ?? (await repo.fetchManifest(options.forDigest, { signal: options.signal }));
  let recipient = options.recipient;
  if (recipient === undefined) {
    // The receipt goes back to whoever sent the message; a manifest that is not a valid message
    // cannot name one, so the caller must.
    try {
      recipient = parseMessageManifest(message.bytes).sender;
    } catch (cause) {
      throw new UsageError(`${options.forDigest} is not a readable message; name the receipt's recipient explicitly`, { cause });
    }
  }
  const createdAt = (options.now ?? (() => new Date()))();
  const annotations = receiptAnnotations({
    sender,
    recipient,
    createdAt,
    ttlSeconds: options.ttlSeconds ?? DEFAULT_TTL_SECONDS,
    forDigest: options.forDigest,
    status: options.status,
    verified: options.verified ?? false,
    reason: options.reason,
  });
  const subject: Descriptor = { mediaType: message.descriptor.mediaType, digest: message.descriptor.digest, size: message.descriptor.size };
  const built = buildManifest({ artifactType: ArtifactType.Receipt, layers: [], subject, annotations });
  const tag = receiptTag(options.forDigest, createdAt);
  // Unsigned, the receipt goes in under its tag in one PUT; signed, the tag waits for the bundle.
  const pushed = await pushArtifact(repo, built, {
    subject,
    tag,
    signer: options.signer,
    now: createdAt,
    signal: options.signal,
    onIndexWrite: options.onIndexWrite,
    onStep,
  });
  const result: AckResult = {
    digest: built.descriptor.digest,
    tag,
    forDigest: options.forDigest,
    status: options.status,
    verified: options.verified ?? false,
    // A receipt always has a subject, so it was indexed one way or another.
    indexedBy: pushed.indexedBy!,
    descriptor: { ...built.descriptor, artifactType: ArtifactType.Receipt, annotations },
  };
  if (pushed.bundle !== undefined) result.bundle = pushed.bundle;
  if (options.auditDir !== undefined) {
    const finishedAt = new Date();
    await writeAuditReceipt(
      options.auditDir,
      {
        schema: AUDIT_SCHEMA,
        operation: 'ack',
        repository: repo.name,
        digest: result.digest,
        reference: `${repo.name}@${result.digest}`,
        tag,
        mediaType: built.descriptor.mediaType,
        artifactType: ArtifactType.Receipt,
        subject: options.forDigest,
        sizes: { manifest: built.descriptor.size },
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        durationMs: finishedAt.getTime() - startedAt.getTime(),
        signer: result.bundle === undefined ? null : { ...result.bundle.signedBy, bundleDigest: result.bundle.digest },
        client: clientInfo(),
      },
      onStep,
    );
  }
  return result;
}
