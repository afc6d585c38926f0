/** A registry credential and the store that answers with one per registry host. */

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token, exchanged at the token endpoint (`grant_type=refresh_token`). */
  identityToken?: string;
  /** A bearer access token sent to the registry as-is. */
  registryToken?: string;
}

export interface CredentialStore {
  /** The credential for `registry` (a host[:port], e.g. `ghcr.io`), or undefined when none. */
  get(registry: string, options?: { signal?: AbortSignal }): Promise<Credential | undefined>;
}
