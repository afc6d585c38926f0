/** Asserting that a promise rejects, and keeping what it rejected with for further checks. */
import assert from 'node:assert/strict';

/** The error `p` rejects with; the test fails (through assert.rejects) when `p` resolves. */
export async function rejection(p: Promise<unknown>, message?: string): Promise<unknown> {
  let caught: unknown;
  await assert.rejects(
    p,
    (err: unknown) => {
      caught = err;
      return true;
    },
    message,
  );
  return caught;
}
