#!/usr/bin/env node
/** The `lading` command: parses arguments, calls the library, prints. Nothing imports this file. */
import { Command, CommanderError } from 'commander';
import { registerBoundImagesCommands } from './bound-images-commands.js';
import { registerBuildCommands } from './build-commands.js';
import { registerCopyCommand } from './copy-command.js';
import { registerImageCommands } from './image-commands.js';
import { registerKeygenCommand } from './keygen-command.js';
import { registerLayoutCommands } from './layout-commands.js';
import { registerMirrorCommand } from './mirror-command.js';
import { reportError } from './output.js';
import { registerQuickstart } from './quickstart.js';
import { registerReleaseCommands } from './release-commands.js';
import { registerSignCommands } from './sign-commands.js';
import { registerVerityCommands } from './verity-commands.js';

const program = new Command('lading')
  .description('move signed, reproducible OCI releases into places the internet cannot reach')
  .version('0.1.0')
  .option('--debug', 'print stack traces with errors')
  .showHelpAfterError('(run lading --help for usage)')
  .exitOverride();

registerImageCommands(program);
registerBoundImagesCommands(program);
registerBuildCommands(program);
registerCopyCommand(program);
registerMirrorCommand(program);
registerLayoutCommands(program);
registerQuickstart(program);
registerReleaseCommands(program);
registerKeygenCommand(program);
registerSignCommands(program);
registerVerityCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version exit 0; commander already printed its usage message otherwise.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    process.exitCode = reportError(e, program.opts<{ debug?: boolean }>().debug ?? process.argv.includes('--debug'));
  }
}
