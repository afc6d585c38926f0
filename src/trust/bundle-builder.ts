import { createHash, X509Certificate } from 'node:crypto';
import { toMessageSignatureBundle, type BundleWithMessageSignature } from '@sigstore/bundle';
import type { Artifact, Signature } from '@sigstore/sign';
// The builder's own module, not the package's index: the index also loads the Fulcio, Rekor and
// TSA clients and their HTTP stack, which a key signature without a witness never uses.
import { MessageSignatureBundleBuilder } from '@sigstore/sign/dist/bundler/message.js';

/**
 * @sigstore/sign's message-signature builder always packages a v0.2 bundle with a certificate
 * *chain*; the wire format asks for v0.3, whose verification material is the single leaf
 * certificate (or a public-key hint). Signing and witnessing stay @sigstore/sign's; only the
 * packaging step is replaced.
 */
export class MessageBundleV03Builder extends MessageSignatureBundleBuilder {
  protected override async package(artifact: Artifact, signature: Signature): Promise<BundleWithMessageSignature> {
    const key = signature.key;
    return toMessageSignatureBundle({
      digest: createHash('sha256').update(artifact.data).digest(),
      signature: signature.signature,
      certificate: key.$case === 'x509Certificate' ? new X509Certificate(key.certificate).raw : undefined,
      keyHint: key.$case === 'publicKey' ? key.hint : undefined,
      certificateChain: false,
    });
  }
}
