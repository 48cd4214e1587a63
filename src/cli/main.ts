#!/usr/bin/env node
/**
 * The `lading` command: parses arguments, calls the library, prints. Nothing imports this file.
 *
 * Command modules load lazily: only the module that registers the command being run is imported, so
 * `lading pin` or `lading fsverity digest` do not pay for the registry client, OpenPGP or the build
 * code at start-up. `--help`, `help` and unknown commands load them all (commander needs every
 * command to print usage or suggest a name).
 */
import { Command, CommanderError } from 'commander';
import { reportError } from './output.js';

const VERSION = '0.1.0';

type Register = (program: Command) => void;

/** Which modules register each top-level command (a group may gather subcommands from several). */
const COMMANDS: Record<string, readonly (() => Promise<Register>)[]> = {
  digest: [async () => (await import('./image-commands.js')).registerImageCommands],
  inspect: [async () => (await import('./image-commands.js')).registerImageCommands],
  ls: [async () => (await import('./image-commands.js')).registerImageCommands],
  'bound-images': [async () => (await import('./bound-images-commands.js')).registerBoundImagesCommands],
  build: [async () => (await import('./build-commands.js')).registerBuildCommands],
  diff: [async () => (await import('./build-commands.js')).registerBuildCommands],
  copy: [async () => (await import('./copy-command.js')).registerCopyCommand],
  mirror: [async () => (await import('./mirror-command.js')).registerMirrorCommand],
  fsck: [async () => (await import('./layout-commands.js')).registerLayoutCommands],
  gc: [async () => (await import('./layout-commands.js')).registerLayoutCommands],
  quickstart: [async () => (await import('./quickstart.js')).registerQuickstart],
  release: [async () => (await import('./release-commands.js')).registerReleaseCommands],
  pin: [async () => (await import('./pin-command.js')).registerPinCommand],
  keygen: [async () => (await import('./keygen-command.js')).registerKeygenCommand],
  sign: [async () => (await import('./sign-commands.js')).registerSignCommands],
  verify: [async () => (await import('./sign-commands.js')).registerSignCommands],
  fsverity: [async () => (await import('./verity-commands.js')).registerVerityCommands],
  composefs: [
    async () => (await import('./verity-commands.js')).registerVerityCommands,
    async () => (await import('./composefs-image-commands.js')).registerComposefsImageCommands,
  ],
  boot: [async () => (await import('./boot-commands.js')).registerBootCommands],
};

/** The command word: the first argument that is not a root option. */
function commandName(args: readonly string[]): string | undefined {
  return args.find((a) => !a.startsWith('-'));
}

async function registerCommands(program: Command, name: string | undefined): Promise<void> {
  const loaders = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name]! : Object.values(COMMANDS).flat();
  // Several names share a module: each register function runs once.
  const registers = new Set(await Promise.all(loaders.map((load) => load())));
  for (const register of registers) register(program);
}

const program = new Command('lading')
  .description('move signed, reproducible OCI releases into places the internet cannot reach')
  .option('--debug', 'print stack traces with errors')
  .showHelpAfterError('(run lading --help for usage)')
  .addHelpText('after', '\nlading --version (or -V) prints the version.')
  .exitOverride();

// `lading ls | head`: a reader that goes away is not an error (Unix tools die quietly of SIGPIPE).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});

const args = process.argv.slice(2);
try {
  // --version only as the first argument: after a command it is that command's (`pin --version V`).
  if (args[0] === '--version' || args[0] === '-V') {
    process.stdout.write(`${VERSION}\n`);
  } else {
    await registerCommands(program, commandName(args));
    await program.parseAsync(process.argv);
  }
} catch (e) {
  if (e instanceof CommanderError) {
    // --help exits 0; commander already printed its usage message otherwise.
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    process.exitCode = reportError(e, program.opts<{ debug?: boolean }>().debug ?? process.argv.includes('--debug'));
  }
}
