/**
 * The library names options, the CLI names flags: library errors carry the option they concern,
 * and the CLI's message shows its flag (and, for a code whose remedy is a setting, the flags that
 * give it). No message thrown below src/cli quotes a flag.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { cliMessage } from '../../src/cli/flags.ts';
import { errorJson } from '../../src/cli/output.ts';
import { receive } from '../../src/comms/receive.ts';
import { CommsError, UsageError } from '../../src/errors.ts';
import { OciLayout } from '../../src/oci/layout/index.ts';
import { openRepository } from '../../src/oci/open.ts';
import { rejection } from '../support/rejection.ts';

describe('library errors name options; the CLI shows flags', () => {
  it('receive refuses max 0 naming the option, and the CLI names --max', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'comms-flags-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const repository = await OciLayout.open(join(dir, 'box'), { create: true });
    const err = await rejection(receive({ repository, me: 'bob', outDir: dir, max: 0, verify: false }), 'max 0 was accepted');
    assert.ok(err instanceof UsageError);
    assert.equal(err.option, 'max');
    assert.match(err.message, /^max must be a positive integer, got 0/);
    assert.doesNotMatch(err.message, /--/);
    assert.match(cliMessage(err), /^--max must be a positive integer, got 0/);
    assert.match((errorJson(err) as { message: string }).message, /^--max must be/);
  });

  it('openRepository refuses a tag in the repository option; the CLI says --repo', async () => {
    const err = await rejection(openRepository('registry.example/mail/box:latest'), 'a tag was accepted');
    assert.ok(err instanceof CommsError);
    assert.equal(err.option, 'repository');
    assert.match(cliMessage(err), /^--repo names a repository/);
  });

  it('an option not at the start of the message is named before it; a remedy that is a setting gets its flags', () => {
    assert.equal(cliMessage(new UsageError('the folder is a file', { option: 'outDir' })), '--out: the folder is a file');
    assert.equal(cliMessage(new UsageError('weird must be 1', { option: 'weird' })), 'weird must be 1');
    const tls = new CommsError('the TLS certificate of r.example is not trusted', { code: 'TLS_CERTIFICATE' });
    assert.match(cliMessage(tls), /not trusted \(flags: --ca-file FILE trusts a CA; --insecure skips the check\)$/);
  });

  it('no string in src/ outside the CLI quotes a command-line flag', () => {
    const src = join(import.meta.dirname, '..', '..', 'src');
    const offenders: string[] = [];
    for (const e of readdirSync(src, { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      const file = relative(src, join(e.parentPath, e.name));
      // The CLI is where flags belong; standalone.ts is a script with its own flags.
      if (file.startsWith('cli/') || file === 'server/standalone.ts') continue;
      readFileSync(join(e.parentPath, e.name), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/^\s*(\*|\/\/|\/\*)/.test(line)) return;
          if (/['"`][^'"`]*\s--[a-z][a-z-]+/.test(line)) offenders.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    assert.deepEqual(offenders, []);
  });
});
