import type { Argv } from 'yargs';

/**
 * yargs renders the chosen command's whole help text right after starting its handler, so that
 * it could print it if the handler failed later: measuring and wrapping text on every run, about
 * a quarter of the CPU of a small send. comms never prints help on a failure (errors carry their
 * own message and hint), so that cache is never read and is not filled. The usage object is shared
 * by every command's parser; the method is part of yargs' internal interface (pinned by the
 * lockfile; test/unit/cli-help-cache.test.ts fails if it goes away).
 */
export function skipHelpCache(cli: Argv): void {
  const internal = cli as unknown as { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = internal.getInternalMethods?.().getUsageInstance?.();
  if (usage !== undefined && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => {};
}
