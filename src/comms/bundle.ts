/**
 * The signature bundle artifact (wire-format.md "Bundle artifact"): one layer holding the
 * Sigstore bundle JSON, `subject` = the signed manifest, tagged `bundle-<hex12>-<unix>-<rand6>`
 * so a v1.0 reader finds it, and listed as a referrer of the signed manifest.
 * Finding a bundle is written once here, for recv and verify alike (v1.0 wrote it twice).
 */
import type { Descriptor } from '../oci/descriptor.ts';
import { digestOf } from '../oci/digest.ts';
import type { OperationOptions, Repository } from '../oci/target.ts';
import { ArtifactType } from '../protocol/constants.ts';
import { bundleManifest } from '../protocol/manifest.ts';
import { bundleTag } from '../protocol/tags.ts';
import type { MessageSigner, SignedBundle } from '../trust/signer.ts';
import { report, runStep, type OnStep } from './steps.ts';
import { signerIdentityOf, type SignerIdentity } from '../trust/signer-identity.ts';
import { pushArtifactManifest } from './push-manifest.ts';

export interface PushedBundle {
  digest: string;
  tag: string;
  descriptor: Descriptor;
  signer: MessageSigner['kind'];
  /** Who signed: the key id, or the keyless certificate's identity. */
  signedBy: SignerIdentity;
}

export interface BundleOptions extends OperationOptions {
  /** The time the bundle's tag names (default now). */
  now?: Date | undefined;
  /** The empty config is already stored (the signed artifact's own push stored it). */
  configPresent?: boolean;
  onStep?: OnStep | undefined;
}

/** Signs `subjectBytes` (the manifest whose descriptor is `subject`) and pushes the bundle artifact. */
export async function pushBundle(
  repo: Repository,
  subject: Descriptor,
  subjectBytes: Uint8Array,
  signer: MessageSigner,
  options: BundleOptions = {},
): Promise<PushedBundle> {
  const signed = await runStep(options.onStep, 'sign', { digest: subject.digest }, () => signer.sign(subjectBytes, { signal: options.signal }));
  report(options.onStep, 'push-bundle', 'started', { digest: subject.digest });
  try {
    return await pushSigned(repo, subject, signer, signed, options);
  } catch (err) {
    report(options.onStep, 'push-bundle', 'failed', { digest: subject.digest });
    throw err;
  }
}

async function pushSigned(repo: Repository, subject: Descriptor, signer: MessageSigner, signed: SignedBundle, options: BundleOptions): Promise<PushedBundle> {
  const layer: Descriptor = { mediaType: ArtifactType.Bundle, digest: digestOf(signed.bytes), size: signed.bytes.length };
  // A fresh signature: no registry holds it yet, so it is sent without asking first.
  await repo.push(layer, signed.bytes, { signal: options.signal, skipExistsCheck: true });
  const built = bundleManifest(layer, subject);
  const tag = bundleTag(subject.digest, options.now ?? new Date());
  // The signed manifest is not tagged before its bundle exists (SPEC §8), so no other writer knows
  // it yet and its tag-schema index is written without waiting for racers.
  await pushArtifactManifest(repo, built, { subject, tag, signal: options.signal, configPresent: options.configPresent === true, subjectUnpublished: true });
  report(options.onStep, 'push-bundle', 'done', { digest: built.descriptor.digest, tag });
  return { digest: built.descriptor.digest, tag, descriptor: built.descriptor, signer: signer.kind, signedBy: signerIdentityOf(signer, signed) };
}
