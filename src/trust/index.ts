/** Signing and verification of messages with Sigstore bundles; age encryption of payloads. */
export type { MessageSigner, SignedBundle } from './signer.ts';
export { KeyError, SigningError } from './errors.ts';
export { keyIdOf } from './key-id.ts';
export { createKeySigner, loadKeySigner, type KeySigner, type KeySignerOptions } from './key-signer.ts';
export { generateAgeIdentityFile, generateKeyPair, type GenerateKeyPairOptions } from './keygen.ts';
export {
  createKeylessSigner,
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  keylessSignerFromEnv,
  type KeylessSigner,
  type KeylessSignerOptions,
} from './keyless-signer.ts';
export { identityTokenSource, type IdentityTokenSource } from './identity-token.ts';
export {
  defaultTufCacheDir,
  loadPublicGoodTrustedRoot,
  loadTrustedRoot,
  loadTrustedRootFile,
  parseTrustedRoot,
  PUBLIC_GOOD_TUF_MIRROR,
  type PublicGoodTrustedRootOptions,
} from './trusted-root.ts';
export { parseTrustedKey } from './public-key.ts';
export { checkTrustPolicy, senderMatches, verifyMessageBundle, type TrustPolicy, type VerifiedSigner, type VerifyContext } from './verify.ts';
export { DecryptionError } from './errors.ts';
export {
  createDecryptStream,
  decryptBytes,
  encryptBytes,
  generateAgeIdentity,
  loadIdentityFiles,
  parseIdentitiesText,
  parseRecipient,
  parseRecipientsText,
  recipientOf,
  resolveRecipients,
  startEncryption,
  type AgeEncryption,
  type AgeIdentities,
  type AgeRecipients,
} from './age.ts';
export {
  defaultTrustFilePath,
  findTrustFile,
  formatTrustLine,
  loadTrustFile,
  parseTrustFile,
  TrustFile,
  type AgeEntry,
  type KeyEntry,
  type KeylessEntry,
  type TrustEntry,
} from './trust-file.ts';
export { TrustFileError } from './errors.ts';
