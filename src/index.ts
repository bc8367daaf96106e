// Entry of the bundle (dist/index.js): the action's steps and the CLI.
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
