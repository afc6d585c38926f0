import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { targetContract } from '../support/target-contract.ts';

targetContract(
  'OciLayout',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'comms-layout-contract-'));
    const repo = await OciLayout.open(join(dir, 'store'), { create: true });
    return { repo, cleanup: () => rm(dir, { recursive: true, force: true }) };
  },
  { referrersApi: true },
);
