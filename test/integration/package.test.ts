/**
 * The package as users get it: `npm pack` (its prepack script builds dist/), the tarball's files
 * and manifest, then the tarball unpacked into an empty project as npm lays it out — with the
 * dependencies taken from this checkout's install, since a test may not download — and used there:
 * the `comms` bin, `import` as ESM, the typings through tsc, and an older Node's one-line refusal.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../support/cli.ts';
import { isCI, tempDir, whichTool, type TempDir } from '../support/tools.ts';

const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  dependencies: Record<string, string>;
  engines: { node: string };
};

/** A Node older than the one required, to check the refusal (CI machines ship Node 20 as `node`). */
function oldNode(): string | undefined {
  for (const candidate of [
    '/usr/bin/node',
    whichTool('node', {
      PATH: (process.env.PATH ?? '')
        .split(':')
        .filter((d) => !d.includes('node_modules'))
        .join(':'),
    }),
  ]) {
    if (candidate === undefined || !existsSync(candidate)) continue;
    const v = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(v.split('.')[0]) < 24) return candidate;
  }
  return undefined;
}

describe('the npm package', () => {
  let work: TempDir;
  let tarball: string;
  let files: string[];
  let project: string;
  let installed: string;

  before(async () => {
    work = await tempDir('comms-package-');
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work.path], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const info = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(work.path, info[0]!.filename);
    files = info[0]!.files.map((f) => f.path);
    // An empty project with the tarball unpacked where npm puts it, its bin linked as npm links it.
    project = join(work.path, 'consumer');
    installed = join(project, 'node_modules', pkg.name);
    await mkdir(installed, { recursive: true });
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', type: 'module', private: true }));
    execFileSync('tar', ['xzf', tarball, '-C', installed, '--strip-components=1']);
    for (const dep of Object.keys(pkg.dependencies)) {
      const target = realpathSync(join(PROJECT_ROOT, 'node_modules', dep));
      await mkdir(join(project, 'node_modules', dep, '..'), { recursive: true });
      await symlink(target, join(project, 'node_modules', dep));
    }
    await mkdir(join(project, 'node_modules', '.bin'));
    await symlink(join('..', pkg.name, 'bin', 'comms.js'), join(project, 'node_modules', '.bin', 'comms'));
  });
  after(async () => {
    await work?.cleanup();
  });

  it('is named oci-comms (the npm name "comms" belongs to another package) and installs the command comms', () => {
    const packed = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, any>;
    assert.equal(packed.name, 'oci-comms');
    assert.deepEqual(packed.bin, { comms: 'bin/comms.js' });
    assert.equal(packed.license, 'Apache-2.0');
    assert.match(readFileSync(join(installed, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0, January 2004/);
  });

  it('has no install-time scripts (npm warns about those), and ships dist/ built, without sources or tests', () => {
    const packed = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) assert.equal(packed.scripts?.[hook], undefined, `no ${hook} script`);
    // Nor does anything it installs: no production dependency has an install script.
    const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    assert.deepEqual(
      Object.entries(lock.packages)
        .filter(([, p]) => p.hasInstallScript && !p.dev)
        .map(([name]) => name),
      [],
    );
    for (const f of ['bin/comms.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'dist/node-check.js', 'LICENSE', 'README.md', 'SPEC.md'])
      assert.ok(files.includes(f), `${f} is in the tarball`);
    assert.deepEqual(
      files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.endsWith('.map')),
      [],
    );
  });

  it('runs as `comms` from node_modules/.bin', () => {
    const r = spawnSync(join(project, 'node_modules', '.bin', 'comms'), ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${join(PROJECT_ROOT, 'node_modules', '.bin')}:${process.env.PATH}` },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), pkg.version);
    const help = spawnSync(process.execPath, [join(installed, 'bin', 'comms.js'), '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /comms send \[file\]/);
    // A command that runs (yargs built from the installed copy's own yargs, no help printed).
    const sent = spawnSync(
      process.execPath,
      [
        join(installed, 'bin', 'comms.js'),
        'send',
        '-m',
        'hi',
        '--repo',
        `oci:${join(work.path, 'cli-box')}`,
        '--to',
        'bob',
        '--sender',
        'alice',
        '--no-sign',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(sent.status, 0, sent.stderr);
    assert.match(sent.stdout, /"digest":"sha256:[0-9a-f]{64}"/);
  });

  it('imports as ESM and sends a message into an oci: folder from the installed copy', async () => {
    const script = `import { send, receive, VERSION, CommsError, openRepository } from '${pkg.name}';
const repository = await openRepository('oci:' + process.argv[2], { create: true });
const sent = await send({ unsigned: true, repository, recipient: 'bob', sender: 'alice', input: { text: 'from the tarball' } });
console.log(JSON.stringify({ VERSION, digest: sent.digest, isClass: typeof CommsError === 'function', receive: typeof receive }));`;
    await writeFile(join(project, 'use.mjs'), script);
    const r = spawnSync(process.execPath, ['use.mjs', join(work.path, 'box')], { cwd: project, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { VERSION: string; digest: string; isClass: boolean; receive: string };
    assert.equal(out.VERSION, pkg.version);
    assert.match(out.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(out.isClass, true);
    assert.equal(out.receive, 'function');
  });

  it('carries its typings: tsc accepts correct use and rejects a wrong option type', async () => {
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2024',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(PROJECT_ROOT, 'node_modules', '@types')],
        },
        files: ['good.ts', 'bad.ts'],
      }),
    );
    await writeFile(
      join(project, 'good.ts'),
      `import { send, type SendResult, type Repository } from '${pkg.name}';\nexport async function f(repository: Repository): Promise<string> {\n  const r: SendResult = await send({ unsigned: true, repository, recipient: 'bob', input: { text: 'hi' } });\n  return r.digest;\n}\n`,
    );
    await writeFile(
      join(project, 'bad.ts'),
      `import { send, type Repository } from '${pkg.name}';\nexport async function g(repository: Repository) {\n  await send({ unsigned: true, repository, recipient: 42, input: { text: 'hi' } });\n}\n`,
    );
    const tsc = join(PROJECT_ROOT, 'node_modules', '.bin', 'tsc');
    const r = spawnSync(tsc, ['-p', project], { cwd: project, encoding: 'utf8' });
    const output = r.stdout + r.stderr;
    // Exactly one error of ours: the number given as recipient in bad.ts; good.ts and the package's
    // own .d.ts files check. (Errors inside the Sigstore packages' typings are theirs: they name
    // make-fetch-happen types they do not depend on; consumers' usual skipLibCheck hides them.)
    const ours = output.split('\n').filter((l) => /error TS/.test(l) && !l.includes('node_modules/@sigstore/'));
    assert.equal(ours.length, 1, output);
    assert.match(ours[0]!, /^bad\.ts\(3,\d+\): error TS2322/);
  });

  it('on an older Node: one line naming the required version, exit 1, for --help, --version and import', (t) => {
    const node = oldNode();
    if (node === undefined) {
      if (isCI()) assert.fail("an older Node (e.g. Debian's node 20) is needed for this test in CI");
      t.skip('no Node older than 24 on this machine');
      return;
    }
    const required = pkg.engines.node.replace(/^>=/, '');
    const runs = [
      spawnSync(node, [join(installed, 'bin', 'comms.js'), '--help'], { encoding: 'utf8' }),
      spawnSync(node, [join(installed, 'bin', 'comms.js'), '--version'], { encoding: 'utf8' }),
      spawnSync(node, ['--input-type=module', '-e', `import '${pkg.name}';`], { cwd: project, encoding: 'utf8' }),
    ];
    for (const r of runs) {
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `one line, no stack trace: ${r.stderr}`);
      assert.ok(lines[0]!.includes(required), lines[0]);
    }
  });
});
