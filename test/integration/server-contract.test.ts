/**
 * The shared Repository contract, run through the project's remote registry client against
 * `comms serve` — the same suite docker-registry passes, here with the Referrers API (the server
 * answers `OCI-Subject` and serves /referrers/, so the suite expects no tag-schema help).
 */
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { targetContract } from '../support/target-contract.ts';
import { tempDir, type TempDir } from '../support/tools.ts';

let dir: TempDir | undefined;
let server: RunningServer | undefined;
let client: RegistryClient | undefined;

before(async () => {
  dir = await tempDir('comms-serve-contract-');
  server = await startServer({ root: dir.path, port: 0 });
  client = new RegistryClient({ plainHttp: true });
});
after(async () => {
  await client?.close();
  await server?.close();
  await dir?.cleanup();
});

targetContract(
  'RemoteRepository on comms serve',
  async () => {
    if (server === undefined || client === undefined) throw new Error('server not started');
    const repo = client.repository(`127.0.0.1:${server.port}/contract/r${randomBytes(6).toString('hex')}`);
    return { repo, cleanup: async () => {} };
  },
  { referrersApi: true },
);
