/**
 * A stand-in `release` command group for the tests, built only from the exported pieces the real group
 * uses (addReleaseInfoSignatureOptions, releaseInfoSignatures, registerReleaseMirror), so the glue is
 * tested through commander as a user runs it. Run: node --import tsx test/sign/release-cli.ts release …
 */
import { Command, CommanderError } from 'commander';
import { reportError } from '../../src/cli/output.js';
import { addReleaseInfoSignatureOptions, registerReleaseMirror, releaseInfoSignatures } from '../../src/cli/release-signature-commands.js';

const program = new Command('lading').exitOverride();
const release = program.command('release');
const info = release.command('info').argument('<ref>');
addReleaseInfoSignatureOptions(info).action(async (ref: string, opts: Parameters<typeof releaseInfoSignatures>[1]) => {
  if (!(await releaseInfoSignatures(ref, opts))) process.stdout.write('(release info without signature flags)\n');
});
registerReleaseMirror(release);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = e instanceof CommanderError ? (e.exitCode === 0 ? 0 : 2) : reportError(e, false);
}
