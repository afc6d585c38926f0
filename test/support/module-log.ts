/**
 * A `--import` hook that appends the URL of every module the process loads, one per line, to the
 * file named by COMMS_TEST_MODULE_LOG: how a test sees what a CLI run imported.
 */
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const log = process.env['COMMS_TEST_MODULE_LOG'];
if (log !== undefined && log !== '') {
  registerHooks({
    load(url, context, nextLoad) {
      appendFileSync(log, `${url}\n`);
      return nextLoad(url, context);
    },
  });
}
