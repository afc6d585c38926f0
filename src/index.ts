/**
 * The comms library. Every use case takes a typed options object with an AbortSignal and
 * progress callbacks, prints nothing, and throws CommsError subclasses that carry an exit code.
 */
// First, so that an unsupported Node stops here with one line instead of a stack trace.
import './node-check.ts';

export { VERSION } from './version.ts';

export * from './errors.ts';
// Every error class an exported function throws, so callers can branch on the class.
export { KeyError, SigningError, DecryptionError } from './trust/errors.ts';
export { InvalidManifestError } from './protocol/validate.ts';
export { ManifestFormatError } from './oci/manifest-json.ts';
export { FileExistsError } from './comms/materialize.ts';

// The OCI layer: references, the Target interface and its two implementations.
export type { Descriptor, ImageManifest, ImageIndex } from './oci/descriptor.ts';
export type {
  Repository,
  Target,
  Storage,
  ReadOnlyStorage,
  PushResult,
  FetchOptions,
  PushOptions,
  OperationOptions,
  PageVisitor,
  ReferrersOptions,
  TagListOptions,
  FetchedManifest,
} from './oci/target.ts';
export { openRepository, openTarget, type OpenOptions, type OpenedTarget } from './oci/open.ts';
export { OciLayout } from './oci/layout/index.ts';
export { openRemoteRepository, type ClientOptions } from './oci/remote/index.ts';
export { parseReference, parseTargetRef, formatReference, type Reference, type TargetRef } from './oci/reference.ts';
export {
  defaultCredentialStore,
  DockerConfigCredentialStore,
  EnvCredentialStore,
  StaticCredentialStore,
  ChainCredentialStore,
  type Credential,
  type CredentialStore,
} from './oci/auth/credentials.ts';
export { digestOf, parseDigest } from './oci/digest.ts';

// The protocol: media types, annotations, tags.
export { ArtifactType, ChunkMediaType, Annotation, ExtensionAnnotation, DEFAULT_CHUNK_BYTES, DEFAULT_TTL_SECONDS } from './protocol/constants.ts';
export { recipientTag, inboxPrefix } from './protocol/tags.ts';
export { parseMessageManifest, type MessageInfo } from './protocol/validate.ts';

// Use cases.
export { resolveSender, type SenderOptions } from './comms/sender.ts';
export { verifyArtifact, judgeReferrer, describeVerdict, type Verdict, type TrustStatus } from './comms/verdict.ts';
export { send, CONTENT_TYPE_TEXT, CONTENT_TYPE_JSON, type SendOptions, type SendResult, type SendInput, type SendProgress } from './comms/send.ts';
export { receive, receiveEach, type ReceiveOptions, type ReceiveResult, type ReceivedMessage, type ReceiveFailure } from './comms/receive.ts';
export { readMessage, DEFAULT_READ_MAX_BYTES, type ReadMessageOptions, type MessageContent } from './comms/read-message.ts';
export { ack, type AckOptions, type AckResult } from './comms/ack.ts';
export { reply, type ReplyOptions, type ReplyResult } from './comms/reply.ts';
export { thread, type ThreadNode } from './comms/thread.ts';
export { findReferrers, type FindReferrersOptions } from './comms/discover.ts';
export { listMessages, type ListOptions, type ListedMessage, type ListFailure } from './comms/list.ts';
export { readReceiptOf, type ReadReceipts } from './comms/read-state.ts';
export { CLOCK_SKEW_MS, isExpiredAt, expiresAtOf } from './protocol/expiry.ts';
export { DEFAULT_BUNDLE_GRACE_MS, defaultWatchStateFile, watch, type WatchOptions } from './comms/watch.ts';
export { waitForReply, waitForReceipt, TimeoutError, type WaitOptions, type WaitedArtifact, type UnverifiedArtifact } from './comms/wait.ts';
export { verifyMessage, type VerifiedMessage } from './comms/verify-message.ts';
export { copy, type CopyOptions, type CopyResult, type CopyProgress, type CopiedManifest } from './comms/copy.ts';
export type { OnStep, StepName, StepState, StepInfo } from './comms/steps.ts';
export { inspect, summarizeManifest, type InspectOptions, type InspectResult, type ManifestSummary } from './comms/inspect.ts';

// Trust: signers and verification.
export {
  loadKeySigner,
  createKeySigner,
  generateKeyPair,
  keylessSignerFromEnv,
  verifyMessageBundle,
  checkTrustPolicy,
  parseTrustedKey,
  loadTrustedRoot,
  type MessageSigner,
  type TrustPolicy,
  type VerifiedSigner,
} from './trust/index.ts';
export { TrustFile, TrustFileError, loadTrustFile, parseTrustFile, findTrustFile, defaultTrustFilePath, type TrustEntry } from './trust/index.ts';

// Encryption: age recipients, identities, and the payload's age file as a stream.
export {
  createDecryptStream,
  generateAgeIdentity,
  loadIdentityFiles,
  parseIdentitiesText,
  parseRecipient,
  recipientOf,
  resolveRecipients,
  startEncryption,
  type AgeEncryption,
  type AgeIdentities,
  type AgeRecipients,
} from './trust/index.ts';

// The local registry.
export { startServer } from './server/index.ts';
