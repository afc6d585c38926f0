/**
 * The shared Repository contract, run against a real CNCF distribution 2.8 registry (plain
 * HTTP on loopback). distribution has no Referrers API, so the suite plays the tag-schema part.
 */
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { RegistryClient } from '../../src/oci/remote/index.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { targetContract } from '../support/target-contract.ts';
import { requireTool, skipMessage } from '../support/tools.ts';

const available = requireTool('docker-registry');
let server: RegistryServer | undefined;
let client: RegistryClient | undefined;

if (available) {
  before(async () => {
    server = await startRegistry({ mode: 'plain' });
    client = new RegistryClient({ plainHttp: true });
  });
  after(async () => {
    await client?.close();
    await server?.stop();
  });
  targetContract(
    'RemoteRepository on docker-registry',
    async () => {
      if (server === undefined || client === undefined) throw new Error('registry not started');
      // A fresh repository per case: registries have no "empty this repository".
      const repo = client.repository(`${server.host}/contract/r${randomBytes(6).toString('hex')}`);
      return { repo, cleanup: async () => {} };
    },
    { referrersApi: false },
  );
} else {
  const { test } = await import('node:test');
  test('Repository contract on docker-registry', (t) => t.skip(skipMessage('docker-registry')));
}
