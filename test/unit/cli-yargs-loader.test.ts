/**
 * The CLI builds yargs from its factory with a shim that loads the help renderer (cliui,
 * string-width) only to print help (src/cli/yargs-loader.ts). These tests run the real CLI under
 * the module-recording hook: an ordinary run must not load the renderer, a help run must load it
 * and print the same help yargs' own entry point prints. If a yargs upgrade moves the factory, the
 * first test fails instead of the saving silently disappearing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import yargs from 'yargs';
import { loadYargs } from '../../src/cli/yargs-loader.ts';
import { describeRun, runComms } from '../support/cli.ts';

const HOOK = pathToFileURL(join(import.meta.dirname, '..', 'support', 'module-log.ts')).href;
const RENDERER = /\/node_modules\/(cliui|string-width|wrap-ansi|strip-ansi)\//;

let dir: string;
let run = 0;

async function loaded(args: string[]): Promise<{ urls: string[]; stdout: string }> {
  const log = join(dir, `modules-${++run}.log`);
  const r = await runComms(args, {
    env: { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${HOOK}`.trim(), COMMS_TEST_MODULE_LOG: log },
  });
  assert.equal(r.code, 0, describeRun(r));
  return { urls: (await readFile(log, 'utf8')).split('\n').filter((l) => l !== ''), stdout: r.stdout };
}

describe('yargs without its help renderer until help is printed', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'comms-yargs-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('a send loads yargs from its factory but not cliui or string-width', async () => {
    const { urls } = await loaded(['send', '--no-sign', '-m', 'hi', '--repo', `oci:${join(dir, 'box')}`, '--to', 'bob', '--sender', 'alice', '--json']);
    assert.ok(
      urls.some((u) => u.endsWith('/node_modules/yargs/build/lib/yargs-factory.js')),
      'yargs was not loaded from its factory',
    );
    assert.deepEqual(
      urls.filter((u) => u.endsWith('/node_modules/yargs/index.mjs') || RENDERER.test(u)),
      [],
    );
  });

  it('send --help loads the renderer and prints the options, wrapped', async () => {
    const { urls, stdout } = await loaded(['send', '--help']);
    assert.ok(
      urls.some((u) => RENDERER.test(u)),
      'the help renderer was not loaded',
    );
    assert.match(stdout, /^comms send \[file\]/);
    assert.match(stdout, /--encrypt-to/);
    for (const line of stdout.split('\n')) assert.ok(line.length <= 110, `a help line is wider than 110 columns: ${line}`);
  });

  it("renders a command's help exactly as yargs' own entry point does", async () => {
    const build = (y: typeof yargs) =>
      y(['greet', '--help'])
        .scriptName('t')
        .command('greet <name>', 'say hello', (c) => c.option('loud', { type: 'boolean', describe: 'shout — in capitals' }))
        .wrap(60)
        .exitProcess(false);
    const render = async (y: typeof yargs) => {
      let text = '';
      await build(y).parseAsync(['greet', '--help'], {}, (_err: unknown, _argv: unknown, output: string) => {
        text = output;
      });
      return text;
    };
    const ours = await render((await loadYargs()) as unknown as typeof yargs);
    assert.match(ours, /--loud\s+shout — in capitals/);
    assert.equal(ours, await render(yargs));
  });
});
