// Preloaded with --import into a lading CLI process: prints its peak resident set size (KiB) on stderr at
// exit. Read from /proc/self/status (VmHWM, per address space) rather than getrusage's maxrss, which Linux
// carries over from the parent across fork and exec, so a big test process would inflate it.
import { readFileSync, writeSync } from 'node:fs';

process.on('exit', () => {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  writeSync(2, `\nmaxrss-kib=${hwm}\n`);
});
