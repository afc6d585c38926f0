/**
 * The CLI keeps yargs from rendering a command's help text after starting its handler (a cache
 * comms never reads). These tests pin the yargs internals that this relies on: if an upgrade
 * removes or renames them, they fail instead of the saving silently disappearing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import yargs, { type Argv } from 'yargs';
import { skipHelpCache } from '../../src/cli/yargs-help-cache.ts';

interface Usage {
  hasCachedHelpMessage(): boolean;
}

function usageOf(cli: Argv): Usage {
  return (cli as unknown as { getInternalMethods(): { getUsageInstance(): Usage } }).getInternalMethods().getUsageInstance();
}

async function parseWithCommand(skip: boolean): Promise<{ ran: boolean; cached: boolean }> {
  let ran = false;
  const cli = yargs(['send', '--to', 'bob'])
    .command(
      'send',
      'send a message',
      (y) => y.option('to', { type: 'string', describe: 'recipient' }),
      async () => {
        ran = true;
      },
    )
    .exitProcess(false);
  if (skip) skipHelpCache(cli);
  await cli.parseAsync();
  return { ran, cached: usageOf(cli).hasCachedHelpMessage() };
}

describe('yargs help cache', () => {
  it('yargs renders and caches the help text when a command runs (what the CLI avoids)', async () => {
    assert.deepEqual(await parseWithCommand(false), { ran: true, cached: true });
  });

  it('skipHelpCache leaves the command running and no help text rendered', async () => {
    assert.deepEqual(await parseWithCommand(true), { ran: true, cached: false });
  });
});
