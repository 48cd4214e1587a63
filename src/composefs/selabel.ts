/**
 * SELinux labels for a bootable composefs tree, as composefs-rs's `selabel` sets them: the image's own
 * policy (`/etc/selinux/config` names SELINUXTYPE; `<type>/contexts/files/file_contexts`, `.local`,
 * `.homedirs` hold the rules, `.subs` and `.subs_dist` the path aliases) decides every file's
 * `security.selinux`, or, without a policy, every label is removed.
 *
 * The matching is composefs-rs's, which is simpler than libselinux's: the LAST rule whose pattern
 * matches `path + type letter` wins (no specificity sorting), aliases apply to exact paths only, and a
 * hardlinked file whose names get different labels is split into separate inodes. Patterns are PCRE2
 * (mostly the POSIX-ERE subset); they run here as JavaScript regexps over the path's bytes (latin1),
 * with POSIX bracket classes translated. A pattern JavaScript cannot compile is an error, never skipped.
 *
 * Written by hand: no npm package reads file_contexts, and libselinux's own matching would give labels
 * that differ from composefs-rs's, hence a different digest.
 */
import { LadingError } from '../errors.js';
import type { Entry, FileTree } from '../fs/tree.js';
import { detachLink } from './tree-links.js';

export const SELINUX_XATTR = 'security.selinux';

/** Reads a regular file's bytes from the image (undefined when they were not kept). */
export type ReadEntry = (entry: Entry) => Uint8Array | undefined;

/** Policy files composefs-rs reads, relative to /etc/selinux/<type>/contexts/files. */
export const SPEC_FILES = ['file_contexts', 'file_contexts.local', 'file_contexts.homedirs'] as const;
export const SUBS_FILES = ['file_contexts.subs', 'file_contexts.subs_dist'] as const;

/** Paths whose bytes an image read must keep for selabel (tree form). */
export const POLICY_PATH = /^etc\/selinux\/(?:config|[^/]+\/contexts\/files\/file_contexts(?:\.local|\.homedirs|\.subs|\.subs_dist)?)$/;

const fail = (msg: string): never => {
  throw new LadingError('UNSUPPORTED_TREE', `SELinux policy in the image: ${msg}`);
};

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

interface Rule {
  /** The pattern's literal start (latin1), for skipping rules cheaply. */
  prefix: string;
  re: RegExp;
  context: string | undefined;
}

interface Policy {
  aliases: Map<string, string>;
  /** Highest priority first (the file order reversed). */
  rules: Rule[];
  /** Rules by the first path component their prefix fixes; `generic` for the others. */
  byComponent: Map<string, number[]>;
  generic: number[];
}

/** The regular file at `path`, or undefined; a non-file there is an error, as in composefs-rs. */
function policyFile(tree: FileTree, path: string, read: ReadEntry): string | undefined {
  let e = tree.get(path);
  if (e?.type === 'hardlink') e = tree.get(e.linkTarget ?? '');
  if (e === undefined) return undefined;
  if (e.type !== 'file') fail(`/${path} is a ${e.type}, not a regular file`);
  const bytes = e.size === 0 ? new Uint8Array(0) : read(e);
  if (bytes === undefined) fail(`the bytes of /${path} were not kept while reading the image`);
  try {
    return utf8.decode(bytes);
  } catch {
    return fail(`/${path} is not valid UTF-8`);
  }
}

function directoryOrNothing(tree: FileTree, path: string): boolean {
  const e = tree.get(path);
  if (e === undefined) return false;
  if (e.type !== 'directory') fail(`/${path} is a ${e.type}, not a directory`);
  return true;
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function selinuxType(config: string): string | undefined {
  for (const line of lines(config)) {
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    if (line.slice(0, eq).trim().toLowerCase() === 'selinuxtype') return line.slice(eq + 1).trim();
  }
  return undefined;
}

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7f',
  blank: '\\t ',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

/** The pattern in JavaScript syntax (POSIX classes), and the literal text every match starts with. */
function translate(pattern: string, where: string): { source: string; prefix: string } {
  let out = '';
  let prefix = '';
  let prefixOpen = true;
  let depth = 0;
  let topLevelAlternation = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      out += pattern.slice(i, i + 2);
      i++;
      prefixOpen = false;
      continue;
    }
    if (c === '[') {
      // A bracket expression: copied through, its [:name:] classes spelled out.
      let j = i + 1;
      let cls = '[';
      if (pattern[j] === '^') cls += pattern[j++];
      if (pattern[j] === ']') cls += pattern[j++];
      for (; j < pattern.length && pattern[j] !== ']'; j++) {
        const m = /^\[:([a-z]+):\]/.exec(pattern.slice(j));
        if (m) {
          const expanded = POSIX_CLASSES[m[1]!];
          if (expanded === undefined) fail(`${where}: unknown class [:${m[1]}:] in ${pattern}`);
          cls += expanded;
          j += m[0].length - 1;
        } else if (pattern[j] === '\\') {
          cls += pattern.slice(j, j + 2);
          j++;
        } else cls += pattern[j];
      }
      if (j >= pattern.length) fail(`${where}: unterminated [ in ${pattern}`);
      out += `${cls}]`;
      i = j;
      prefixOpen = false;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) topLevelAlternation = true;
    if (prefixOpen) {
      if ('.^$|()[]{}*+?'.includes(c)) {
        // A quantifier that allows zero repeats makes the character before it optional.
        if (c === '*' || c === '?' || c === '{') prefix = prefix.slice(0, -1);
        prefixOpen = false;
      } else prefix += c;
    }
    out += c;
  }
  return { source: out, prefix: topLevelAlternation ? '' : prefix };
}

function readSpecs(text: string, file: string, into: { pattern: string; type: string; context: string }[]): void {
  lines(text).forEach((line, i) => {
    const parts = line.split(/\s+/).filter((p) => p !== '');
    const where = `${file} line ${i + 1}`;
    if (parts.length === 0 || parts[0]!.startsWith('#')) return;
    if (parts.length < 2) fail(`${where}: missing context`);
    let type = '.';
    let rest = parts.slice(1);
    if (rest[0]!.startsWith('-')) {
      const code = rest[0]!.slice(1);
      if (!['b', 'c', 'd', 'p', 'l', 's', '-'].includes(code)) fail(`${where}: invalid file type -${code}`);
      type = code;
      rest = rest.slice(1);
      if (rest.length === 0) fail(`${where}: missing context`);
    }
    if (rest.length > 1) fail(`${where}: trailing data after the context`);
    into.push({ pattern: parts[0]!, type, context: rest[0]! });
  });
}

function readSubs(text: string, file: string, aliases: Map<string, string>): void {
  lines(text).forEach((line, i) => {
    const parts = line.split(/\s+/).filter((p) => p !== '');
    if (parts.length === 0 || parts[0]!.startsWith('#')) return;
    if (parts.length < 2) fail(`${file} line ${i + 1}: missing original path`);
    if (parts.length > 2) fail(`${file} line ${i + 1}: trailing data`);
    aliases.set(parts[0]!, parts[1]!);
  });
}

/** The image's policy, or undefined when it has none (no /etc/selinux, no config, no SELINUXTYPE). */
function loadPolicy(tree: FileTree, read: ReadEntry): Policy | undefined {
  if (!directoryOrNothing(tree, 'etc') || !directoryOrNothing(tree, 'etc/selinux')) return undefined;
  const config = policyFile(tree, 'etc/selinux/config', read);
  if (config === undefined) return undefined;
  const type = selinuxType(config);
  if (type === undefined) return undefined;
  const dir = `etc/selinux/${type}/contexts/files`;
  for (const d of [`etc/selinux/${type}`, `etc/selinux/${type}/contexts`, dir]) {
    if (!directoryOrNothing(tree, d)) fail(`SELINUXTYPE=${type} but /${d} does not exist`);
  }
  const specs: { pattern: string; type: string; context: string }[] = [];
  for (const name of SPEC_FILES) {
    const text = policyFile(tree, `${dir}/${name}`, read);
    if (text === undefined) {
      if (name === 'file_contexts') fail(`/${dir}/file_contexts is missing`);
      continue;
    }
    readSpecs(text, `/${dir}/${name}`, specs);
  }
  const aliases = new Map<string, string>();
  for (const name of SUBS_FILES) {
    const text = policyFile(tree, `${dir}/${name}`, read);
    if (text !== undefined) readSubs(text, `/${dir}/${name}`, aliases);
  }
  specs.reverse();
  const rules: Rule[] = [];
  const byComponent = new Map<string, number[]>();
  const generic: number[] = [];
  specs.forEach((s, i) => {
    const where = `/${dir}`;
    const { source, prefix } = translate(latin1(s.pattern), where);
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${source})${s.type === '.' ? '.' : s.type}$`, 's');
    } catch (e) {
      return fail(`${where}: pattern ${s.pattern} is not a regular expression Lading can run (${(e as Error).message})`);
    }
    rules.push({ prefix, re, context: s.context === '<<none>>' ? undefined : s.context });
    const m = /^\/([^/]+)\//.exec(prefix);
    if (m) {
      let list = byComponent.get(m[1]!);
      if (list === undefined) byComponent.set(m[1]!, (list = []));
      list.push(i);
    } else generic.push(i);
  });
  return { aliases, rules, byComponent, generic };
}

/** The context of the highest-priority rule matching `path` (latin1) with file type `type`. */
function lookup(policy: Policy, path: string, type: string): string | undefined {
  const key = latin1(path) + type;
  const slash = key.indexOf('/', 1);
  const component = key.slice(1, slash < 0 ? key.length - 1 : slash);
  const specific = policy.byComponent.get(component) ?? [];
  const generic = policy.generic;
  let a = 0;
  let b = 0;
  while (a < specific.length || b < generic.length) {
    const i = b >= generic.length || (a < specific.length && specific[a]! < generic[b]!) ? specific[a++]! : generic[b++]!;
    const rule = policy.rules[i]!;
    if (key.startsWith(rule.prefix) && rule.re.test(key)) return rule.context;
  }
  return undefined;
}

const TYPE_LETTER: Record<string, string> = { file: '-', directory: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p', socket: 's' };

function setLabel(e: Entry, label: string | undefined): void {
  if (label === undefined) e.xattrs.delete(SELINUX_XATTR);
  else e.xattrs.set(SELINUX_XATTR, Buffer.from(label, 'utf8'));
}

/**
 * Labels every entry from the image's policy, or strips every label when there is none. Returns
 * whether a policy was applied.
 */
export function selabel(tree: FileTree, read: ReadEntry): boolean {
  const policy = loadPolicy(tree, read);
  if (policy === undefined) {
    for (const e of tree.walk()) e.xattrs.delete(SELINUX_XATTR);
    return false;
  }
  // Each name's inode, fixed before any link is split (splitting moves the content between names).
  const inode = new Map<string, string>();
  for (const e of tree.walk()) if (e.type === 'hardlink') inode.set(e.path, e.linkTarget ?? '');
  const labeled = new Map<string, string | undefined>();

  const visit = (path: string, effective: string): void => {
    setLabel(tree.get(path)!, lookup(policy, effective === '' ? '/' : effective, 'd'));
    for (const name of tree.children(path) ?? []) {
      const child = path === '' ? name : `${path}/${name}`;
      const own = `${effective}/${name}`;
      const at = policy.aliases.get(own) ?? own;
      const e = tree.get(child)!;
      if (e.type === 'directory') {
        visit(child, at);
        continue;
      }
      const key = inode.get(child) ?? child;
      const holder = e.type === 'hardlink' ? tree.get(e.linkTarget ?? '')! : e;
      const label = lookup(policy, at, TYPE_LETTER[holder.type] ?? '-');
      if (labeled.has(key) && labeled.get(key) !== label) {
        setLabel(detachLink(tree, child), label);
        continue;
      }
      setLabel(holder, label);
      if (!labeled.has(key)) labeled.set(key, label);
    }
  };
  visit('', '');
  return true;
}
