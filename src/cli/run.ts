// Runs the CLI from source (tests and development); bin/comms.js runs the built copy.
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
