/**
 * Command-line conventions users expect: typos named as typos, Ctrl-C exits 130, a closed stdout
 * ends quietly, --quiet, hints that name where credentials were looked up and --ca-file, and
 * shell completion that a real bash drives.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { collect, PROJECT_ROOT, runComms, spawnComms } from '../support/cli.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { requireTool, skipMessage, tempDir } from '../support/tools.ts';

const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at |Error:|node:internal/, `no stack trace on stderr: ${stderr}`);

describe('comms CLI conventions', () => {
  it('a misspelt flag is reported as unknown, with the flag it resembles (not as a missing option)', async () => {
    const r = await runComms(['send', '--recipent', 'bob', '--repo', 'oci:/nonexistent-comms/box', '-m', 'hi', '--no-sign']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /unknown option --recipent \(did you mean --recipient\?\)/);
    assert.doesNotMatch(r.stderr, /Missing required/);
  });

  it('a misspelt command is reported as unknown, with the command it resembles', async () => {
    const r = await runComms(['sned', '--to', 'bob']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /unknown command "sned" \(did you mean send\?\)/);
  });

  it('a closed stdout ends the command quietly with 141, as SIGPIPE would, with no stack trace', async () => {
    const child = spawnComms(['completion', 'bash']);
    // The reader is gone before comms writes anything (`comms … | head -1` once head has exited).
    child.stdout!.destroy();
    const stderr: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => stderr.push(b));
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    const text = Buffer.concat(stderr).toString();
    assert.equal(code, 141, `stderr: ${text}`);
    noStack(text);
    assert.equal(text, '');
  });

  it('Ctrl-C (SIGINT) during a transfer exits 130 and says it was interrupted', { timeout: 60_000 }, async () => {
    // A registry that accepts connections and never answers: the command is mid-request when interrupted.
    const sockets = new Set<Socket>();
    let connected!: () => void;
    const gotConnection = new Promise<void>((resolve) => (connected = resolve));
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      connected();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const out = await tempDir('comms-cli-sigint-');
    try {
      const child = spawnComms(['recv', '--repo', `127.0.0.1:${port}/box`, '--me', 'bob', '--out', out.path, '--no-verify', '--plain-http']);
      const done = collect(child);
      await gotConnection;
      child.kill('SIGINT');
      const r = await done;
      assert.equal(r.code, 130, `stderr: ${r.stderr}`);
      assert.match(r.stderr, /comms: interrupted/);
      noStack(r.stderr);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
      await out.cleanup();
    }
  });

  it('--quiet drops notes (here the --no-sign warning) but keeps the result', async () => {
    const dir = await tempDir('comms-cli-quiet-');
    try {
      const loud = await runComms(['send', '-m', 'hi', '--to', 'bob', '--repo', `oci:${join(dir.path, 'box')}`, '--no-sign']);
      assert.equal(loud.code, 0, loud.stderr);
      assert.match(loud.stderr, /NOT signed/);
      const quiet = await runComms(['send', '-m', 'hi', '--to', 'bob', '--repo', `oci:${join(dir.path, 'box')}`, '--no-sign', '--quiet']);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.equal(quiet.stderr, '');
      assert.match(quiet.stdout, /^sent /);
    } finally {
      await dir.cleanup();
    }
  });

  it('comms completion bash: a real bash completes command names and the options of the command typed', async (t) => {
    const dir = await tempDir('comms-cli-completion-');
    try {
      const bin = join(dir.path, 'bin');
      await mkdir(bin);
      await writeFile(join(bin, 'comms'), `#!/bin/sh\nexec "${process.execPath}" "${join(PROJECT_ROOT, 'src', 'cli', 'run.ts')}" "$@"\n`);
      await chmod(join(bin, 'comms'), 0o755);
      const complete = (words: string[]) => {
        const script = `source <(comms completion bash)\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})\nCOMP_CWORD=${words.length - 1}\n_comms_completions\nprintf '%s\\n' "\${COMPREPLY[@]}"\n`;
        const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, SHELL: '/bin/bash' } });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.split('\n').filter(Boolean);
      };
      assert.deepEqual(complete(['comms', 'se']).sort(), ['send', 'serve']);
      assert.deepEqual(complete(['comms', 'send', '--reci']), ['--recipient']);
      assert.ok(complete(['comms', 'recv', '--']).includes('--out'));
    } finally {
      await dir.cleanup();
    }
    t.diagnostic('bash completion checked through bash itself');
  });

  it('comms completion zsh: a compdef script, and completions with descriptions for zsh', async () => {
    // Raw output: the script has lines starting with `{`, which runComms would read as JSON.
    const script = spawnSync(process.execPath, ['src/cli/run.ts', 'completion', 'zsh'], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    assert.equal(script.status, 0);
    assert.match(script.stdout, /^#compdef comms/);
    assert.match(script.stdout, /compdef _comms_completions comms/);
    const words = await runComms(['--get-yargs-completions', 'comms', 'send', '--reci'], { env: { ZSH_NAME: 'zsh' } });
    assert.match(words.stdout, /^--recipient:Who the message is for$/m);
    const bad = await runComms(['completion', 'fish']);
    assert.equal(bad.code, 4);
  });
});

if (!requireTool('docker-registry')) {
  it('CLI error hints', (t) => t.skip(skipMessage('docker-registry')));
} else {
  describe('CLI error hints', () => {
    let basic: RegistryServer;
    let tls: RegistryServer;
    before(async () => {
      [basic, tls] = await Promise.all([startRegistry({ mode: 'basic' }), startRegistry({ mode: 'tls' })]);
    });
    after(async () => {
      await Promise.all([basic?.stop(), tls?.stop()]);
    });

    it('an auth failure names where credentials were looked up (flags, environment, the docker config file)', async () => {
      const cfg = await tempDir('comms-cli-hint-');
      try {
        const r = await runComms(['send', '-m', 'hi', '--to', 'bob', '--repo', `${basic.host}/box`, '--no-sign'], { env: { DOCKER_CONFIG: cfg.path } });
        assert.equal(r.code, 3, r.stderr);
        assert.match(
          r.stderr,
          /comms: hint: credentials for 127\.0\.0\.1:\d+ were looked up in --username with --password-stdin, then COMMS_REGISTRY_USERNAME/,
        );
        assert.ok(r.stderr.includes(join(cfg.path, 'config.json')), r.stderr);
        assert.match(r.stderr, /comms login 127\.0\.0\.1:\d+ -u USER --password-stdin/);
      } finally {
        await cfg.cleanup();
      }
    });

    it('an untrusted TLS certificate names --ca-file', async () => {
      const r = await runComms(['send', '-m', 'hi', '--to', 'bob', '--repo', `${tls.host}/box`, '--no-sign', '--json']);
      assert.equal(r.code, 1, r.stderr);
      const line = JSON.parse(r.stderr.trim().split('\n').pop()!) as { error: { code: string; message: string } };
      assert.equal(line.error.code, 'TLS_CERTIFICATE');
      assert.match(line.error.message, /--ca-file/);
      const ok = await runComms(['send', '-m', 'hi', '--to', 'bob', '--repo', `${tls.host}/box`, '--no-sign', '--ca-file', tls.caFile!]);
      assert.equal(ok.code, 0, ok.stderr);
    });
  });
}
