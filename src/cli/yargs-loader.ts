/**
 * yargs, built from its own factory with a platform shim that loads the help renderer (cliui and
 * string-width) only when help is printed. yargs' ESM entry loads them up front, and string-width
 * builds its Unicode tables as it loads: with them, loading yargs took 65-100 ms of a short
 * command; without them 20-27 ms (bench/RESULTS.md §6). comms renders no help on an ordinary run
 * (yargs-help-cache.ts), so most runs never load them.
 *
 * The factory and the shim's shape are yargs' internal interface, reached through yargs' own
 * folder (its `exports` map does not list them). The lockfile pins yargs; if a release moves the
 * factory, yargs' entry point is used instead (slower, same behaviour).
 * test/unit/cli-yargs-loader.test.ts checks both that the fast path is taken and that help still renders.
 */
import { notStrictEqual, strictEqual } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import type { Argv } from 'yargs';

export type YargsFn = (argv: string[]) => Argv;

export async function loadYargs(): Promise<YargsFn> {
  const entry = import.meta.resolve('yargs');
  const factoryUrl = new URL('./build/lib/yargs-factory.js', entry);
  const argvUrl = new URL('./build/lib/utils/process-argv.js', entry);
  let factory: { YargsFactory: (shim: unknown) => YargsFn };
  let processArgv: { getProcessArgvBin: () => string };
  try {
    [factory, processArgv] = await Promise.all([import(factoryUrl.href), import(argvUrl.href)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException | undefined)?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
    return (await import('yargs')).default as unknown as YargsFn;
  }
  // yargs' dependencies, resolved from yargs' folder as its own imports would be.
  const fromYargs = createRequire(entry);
  const [parser, y18n, escalade, callerFile] = await Promise.all(
    ['yargs-parser', 'y18n', 'escalade/sync', 'get-caller-file'].map((name) => import(pathToFileURL(fromYargs.resolve(name)).href)),
  );
  let cliui: ((options: unknown) => unknown) | undefined;
  let stringWidth: ((text: string) => number) | undefined;
  const yargsFile = fileURLToPath(entry);
  // As yargs' own shim: the application's folder is what precedes node_modules in yargs' path.
  const mainFilename = yargsFile.substring(0, yargsFile.lastIndexOf('node_modules'));
  const shim = {
    assert: { notStrictEqual, strictEqual },
    cliui: (options: unknown) => {
      cliui ??= fromYargs('cliui') as (options: unknown) => unknown;
      return cliui(options);
    },
    findUp: escalade.default,
    getEnv: (key: string) => process.env[key],
    inspect,
    getProcessArgvBin: processArgv.getProcessArgvBin,
    mainFilename: mainFilename || process.cwd(),
    Parser: parser.default,
    path: { basename: path.basename, dirname: path.dirname, extname: path.extname, relative: path.relative, resolve: path.resolve, join: path.join },
    process: {
      argv: () => process.argv,
      cwd: process.cwd,
      emitWarning: (warning: string, type?: string) => process.emitWarning(warning, type),
      execPath: () => process.execPath,
      exit: (code: number) => process.exit(code),
      nextTick: process.nextTick,
      stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null,
    },
    readFileSync,
    readdirSync,
    require: fromYargs,
    getCallerFile: () => {
      const file = callerFile.default(3) as string;
      return file.startsWith('file://') ? fileURLToPath(file) : file;
    },
    stringWidth: (text: string) => {
      stringWidth ??= (fromYargs('string-width') as { default: (text: string) => number }).default;
      return stringWidth(text);
    },
    y18n: y18n.default({ directory: path.resolve(path.dirname(yargsFile), 'locales'), updateFiles: false }),
  };
  return factory.YargsFactory(shim);
}
