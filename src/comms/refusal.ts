/**
 * Which failures are a verdict on one artifact — it breaks the protocol, fails verification, or
 * cannot be decrypted — and so refuse that artifact alone, while a transport, auth or store failure
 * ends the operation. Decided by error class, never by exit code or message.
 */
import { ProtocolError, VerificationError } from '../errors.ts';
import { DecryptionError } from '../trust/errors.ts';

export function isVerdictOnArtifact(err: unknown): err is ProtocolError | VerificationError | DecryptionError {
  return err instanceof ProtocolError || err instanceof VerificationError || err instanceof DecryptionError;
}
