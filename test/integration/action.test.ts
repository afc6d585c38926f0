/**
 * The GitHub Action (action.yml) run as GitHub runs a composite action: its `run:` steps executed
 * by bash with the inputs, `github` context and step outputs substituted, GITHUB_ACTIONS=true, the
 * job's OIDC endpoint (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN) served by a local issuer, Fulcio and
 * Rekor from @sigstore/mock, and a real docker-registry with Bearer token auth. The `uses:` step
 * (actions/setup-node) is checked and skipped: the test already runs on Node 24. A receiver then
 * verifies the message against the workflow's identity.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT, runComms } from '../support/cli.ts';
import { startRegistry, type RegistryServer } from '../support/registry.ts';
import { mockIdentityToken, startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.ts';
import { requireTools, skipMessage, tempDir, type TempDir } from '../support/tools.ts';

const ISSUER = 'https://token.actions.githubusercontent.com';
const WORKFLOW_REF = 'acme/app/.github/workflows/deploy.yml@refs/heads/main';
const IDENTITY = `https://github.com/${WORKFLOW_REF}`;
const REQUEST_TOKEN = 'actions-request-secret';
// The registry's one user has the job token as password: if the action handed the job token to a
// registry other than ghcr.io, a send without credentials would succeed instead of being refused.
const ACTOR = 'octocat';
const JOB_TOKEN = 'ghs_jobtoken0123456789';

interface Step {
  id?: string;
  uses?: string;
  with?: Record<string, unknown>;
  shell?: string;
  env?: Record<string, string>;
  run?: string;
}
interface ActionYml {
  inputs: Record<string, { default?: string; required?: boolean }>;
  outputs: Record<string, { value: string }>;
  runs: { using: string; steps: Step[] };
}

interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  skipped: string[];
}

/** Runs action.yml's steps as the GitHub runner does for a composite action. */
async function runAction(
  action: ActionYml,
  inputs: Record<string, string>,
  job: { env: Record<string, string>; github: Record<string, string>; dir: string },
): Promise<ActionRun> {
  assert.equal(action.runs.using, 'composite');
  const inputValues: Record<string, string> = {};
  const github = { ...job.github, action_path: PROJECT_ROOT.replace(/\/$/, '') };
  const steps: Record<string, { outputs: Record<string, string> }> = {};
  const evaluate = (text: string): string =>
    text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
      const [scope, ...rest] = expr.split('.');
      if (scope === 'inputs') return inputValues[rest.join('.')] ?? '';
      if (scope === 'github') {
        const v = github[rest.join('.') as keyof typeof github];
        if (v === undefined) throw new Error(`the runner has no github.${rest.join('.')}`);
        return v;
      }
      if (scope === 'steps' && rest[1] === 'outputs') return steps[rest[0]!]?.outputs[rest[2]!] ?? '';
      throw new Error(`unsupported expression ${expr}`);
    });
  for (const [name, spec] of Object.entries(action.inputs)) {
    inputValues[name] = inputs[name] ?? evaluate(String(spec.default ?? ''));
    if (spec.required && inputValues[name] === '') throw new Error(`input ${name} is required`);
  }
  for (const name of Object.keys(inputs)) assert.ok(name in action.inputs, `action.yml has an input ${name}`);
  let stdout = '';
  let stderr = '';
  const skipped: string[] = [];
  for (const [i, step] of action.runs.steps.entries()) {
    if (step.uses !== undefined) {
      skipped.push(`${step.uses} ${JSON.stringify(step.with ?? {})}`);
      continue;
    }
    assert.equal(step.shell, 'bash');
    const outputFile = join(job.dir, `output-${i}`);
    await writeFile(outputFile, '');
    const script = join(job.dir, `step-${i}.sh`);
    await writeFile(script, evaluate(step.run!));
    const env: Record<string, string> = { ...job.env, GITHUB_OUTPUT: outputFile };
    for (const [k, v] of Object.entries(step.env ?? {})) env[k] = evaluate(String(v));
    const r = await new Promise<{ code: number; out: string; err: string }>((resolve, reject) => {
      const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], { cwd: job.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b));
      child.stderr.on('data', (b: Buffer) => (err += b));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code: code ?? -1, out, err }));
    });
    stdout += r.out;
    stderr += r.err;
    const outputs: Record<string, string> = {};
    for (const line of (await readFile(outputFile, 'utf8')).split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) outputs[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (step.id) steps[step.id] = { outputs };
    if (r.code !== 0) return { code: r.code, stdout, stderr, outputs: {}, skipped };
  }
  const outputs = Object.fromEntries(Object.entries(action.outputs).map(([k, v]) => [k, evaluate(v.value)]));
  return { code: 0, stdout, stderr, outputs, skipped };
}

if (!requireTools('docker-registry', 'yq')) {
  it('GitHub Action', (t) => t.skip(skipMessage('docker-registry', 'yq')));
} else {
  describe('the GitHub Action (action.yml)', () => {
    let registry: RegistryServer;
    let mock: SigstoreMock;
    let oidc: Server;
    let oidcURL: string;
    let oidcRequests = 0;
    let work: TempDir;
    let action: ActionYml;
    let rootFile: string;

    before(async () => {
      work = await tempDir('comms-action-');
      action = JSON.parse(execFileSync('yq', ['.', join(PROJECT_ROOT, 'action.yml')], { encoding: 'utf8' })) as ActionYml;
      [registry, mock] = await Promise.all([startRegistry({ mode: 'token', users: { [ACTOR]: JOB_TOKEN } }), startSigstoreMock()]);
      rootFile = join(work.path, 'trusted_root.json');
      await writeFile(rootFile, JSON.stringify(mock.trustedRoot));
      // The job's OIDC endpoint, as GitHub serves it to a job with `permissions: id-token: write`.
      oidc = createServer((req, res) => {
        oidcRequests++;
        const url = new URL(req.url ?? '/', 'http://x');
        if (req.headers.authorization !== `Bearer ${REQUEST_TOKEN}` || url.searchParams.get('audience') !== 'sigstore') {
          res.writeHead(403).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: mockIdentityToken({ iss: ISSUER, sub: IDENTITY }) }));
      });
      await new Promise<void>((resolve) => oidc.listen(0, '127.0.0.1', resolve));
      oidcURL = `http://127.0.0.1:${(oidc.address() as { port: number }).port}/_apis/token?api-version=2.0`;
    });
    after(async () => {
      oidc?.close();
      await Promise.all([registry?.stop(), mock?.close()]);
      await work?.cleanup();
    });

    const job = (idToken: boolean) => ({
      dir: work.path,
      github: { token: JOB_TOKEN, actor: ACTOR, server_url: 'https://github.com', workflow_ref: WORKFLOW_REF },
      env: {
        PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
        HOME: work.path,
        DOCKER_CONFIG: join(work.path, 'docker'),
        GITHUB_ACTIONS: 'true',
        CI: 'true',
        RUNNER_TEMP: work.path,
        ...(idToken ? { ACTIONS_ID_TOKEN_REQUEST_URL: oidcURL, ACTIONS_ID_TOKEN_REQUEST_TOKEN: REQUEST_TOKEN } : {}),
      },
    });
    const base = () => ({
      repo: `${registry.host}/acme/mailbox`,
      recipient: 'ops',
      message: 'deploy 1.4.2 ok',
      command: `${process.execPath} ${join(PROJECT_ROOT, 'src', 'cli', 'run.ts')}`,
      args: `--fulcio-url ${mock.fulcioURL} --rekor-url ${mock.rekorURL}`,
    });

    it('sends a keylessly signed message with the job OIDC token; a receiver verifies the workflow identity; outputs digest and tag', async () => {
      const run = await runAction(action, { ...base(), 'registry-username': ACTOR, 'registry-password': JOB_TOKEN }, job(true));
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.deepEqual(run.skipped, ['actions/setup-node@v4 {"node-version":24}']);
      assert.match(run.outputs['digest']!, /^sha256:[0-9a-f]{64}$/);
      assert.match(run.outputs['tag']!, /^inbox-/);
      assert.equal(run.outputs['signed'], 'true');
      assert.ok(oidcRequests > 0, 'the token came from the job OIDC endpoint');
      assert.ok(mock.fulcioRequests.length > 0 && mock.rekorRequests.length > 0);
      assert.ok(!run.stdout.includes(JOB_TOKEN.slice(4)) || run.stdout.includes(`::add-mask::${JOB_TOKEN}`), 'the secret is printed only as a mask command');

      const out = await tempDir('comms-action-out-');
      try {
        const r = await runComms(
          [
            'recv',
            '--repo',
            `${registry.host}/acme/mailbox`,
            '--me',
            'ops',
            '--out',
            out.path,
            '--certificate-identity',
            IDENTITY,
            '--certificate-oidc-issuer',
            ISSUER,
            '--trusted-root',
            rootFile,
            '--require-sender-match',
            '--username',
            ACTOR,
            '--password-stdin',
            '--json',
          ],
          { stdin: JOB_TOKEN },
        );
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json[0]!['digest'], run.outputs['digest']);
        assert.deepEqual(r.json[0]!['verified'], { kind: 'keyless', identity: IDENTITY, issuer: ISSUER });
        assert.equal(await readFile(join(out.path, 'message.txt'), 'utf8'), 'deploy 1.4.2 ok');
      } finally {
        await out.cleanup();
      }
    });

    it("runs the package version it is released with (inputs.version is package.json's version)", async () => {
      const pkg = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
      assert.equal(action.inputs['version']!.default, pkg.version);
      assert.match(await readFile(join(PROJECT_ROOT, 'action', 'send.sh'), 'utf8'), new RegExp(`--package "${pkg.name}@`));
    });

    it('without `permissions: id-token: write` it fails the step with a message saying so, and sends nothing', async () => {
      const run = await runAction(action, { ...base(), 'registry-username': ACTOR, 'registry-password': JOB_TOKEN }, job(false));
      assert.equal(run.code, 4);
      assert.match(run.stdout, /::error title=comms send::keyless signing needs the job's OIDC token: add 'permissions: id-token: write'/);
    });

    it("never hands the job's token to a registry other than ghcr.io", async () => {
      const run = await runAction(action, { ...base(), signing: 'none' }, job(true));
      assert.equal(run.code, 3, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stderr, /comms login/);
    });
  });
}
