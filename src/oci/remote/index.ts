/** The OCI Distribution registry client: open a repository, or share a client between several. */
export { RegistryClient, openRemoteRepository, type ClientOptions, type RequestEvent } from './client.ts';
export { RemoteRepository } from './repository.ts';
