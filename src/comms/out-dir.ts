/**
 * The output folder of a receive (`--out`): it must be a folder, or not exist yet (it is then
 * created). A regular file, a symbolic link to nothing, or a path through a file is refused with a
 * clear UsageError (exit 4) naming what it is, before any request is made.
 */
import { lstat, mkdir, readlink, stat } from 'node:fs/promises';
import { CommsError, UsageError } from '../errors.ts';

/** Checks `outDir` without changing anything; resolves whether it already exists. */
export async function checkOutDir(outDir: string): Promise<'exists' | 'absent'> {
  if (outDir === '') throw new UsageError('outDir must not be empty', { code: 'OUT_INVALID', option: 'outDir' });
  let st;
  try {
    st = await stat(outDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const link = await lstat(outDir).catch(() => undefined);
      if (link?.isSymbolicLink()) {
        const target = await readlink(outDir).catch(() => '?');
        throw new UsageError(`outDir ${outDir} is a symbolic link to ${target}, which does not exist`, { code: 'OUT_INVALID', option: 'outDir', cause: err });
      }
      return 'absent';
    }
    if (code === 'ENOTDIR')
      throw new UsageError(`outDir ${outDir} cannot be a folder: part of its path is a file`, { code: 'OUT_INVALID', option: 'outDir', cause: err });
    if (code === 'ELOOP') throw new UsageError(`outDir ${outDir} is a loop of symbolic links`, { code: 'OUT_INVALID', option: 'outDir', cause: err });
    throw new CommsError(`outDir ${outDir} cannot be used (${code ?? 'error'})`, { code: 'OUT_UNUSABLE', option: 'outDir', cause: err });
  }
  if (!st.isDirectory()) {
    const what = st.isFile() ? 'a regular file' : 'not a folder';
    throw new UsageError(`outDir ${outDir} is ${what}: received files go into a folder (name a folder, or a path that does not exist yet)`, {
      code: 'OUT_NOT_A_FOLDER',
      option: 'outDir',
    });
  }
  return 'exists';
}

/** checkOutDir, then creates the folder (and its parents) when it does not exist. */
export async function prepareOutDir(outDir: string): Promise<void> {
  if ((await checkOutDir(outDir)) === 'exists') return;
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A parent that is a file, or a dangling link on the way, makes mkdir fail with one of these.
    if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'ENOENT') {
      throw new UsageError(`outDir ${outDir} cannot be created: part of its path is a file or a symbolic link to nothing (${code})`, {
        code: 'OUT_INVALID',
        option: 'outDir',
        cause: err,
      });
    }
    throw new CommsError(`outDir ${outDir} cannot be created (${code ?? 'error'})`, { code: 'OUT_UNUSABLE', option: 'outDir', cause: err });
  }
  // Raced by something else creating a file there: refuse rather than write beside it.
  await checkOutDir(outDir);
}
