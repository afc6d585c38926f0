/** Where the CLI looks for registry credentials, in order, as a sentence for error hints (names only, never values). */
import { DockerConfigCredentialStore } from '../oci/auth/docker-config.ts';

export function credentialSources(registry: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const host = env['COMMS_REGISTRY_HOST'];
  const envApplies = host === undefined || host === '' || registry === undefined || host === registry;
  const sources = ['--username with --password-stdin'];
  if (envApplies) sources.push('COMMS_REGISTRY_USERNAME/COMMS_REGISTRY_PASSWORD or COMMS_REGISTRY_TOKEN');
  sources.push(`${new DockerConfigCredentialStore({ env }).configFile} (its auths, credHelpers and credsStore)`);
  return sources.join(', then ');
}
