/**
 * The declarative build spec (`lading build SPEC.yaml`): parsed with the `yaml` library, then checked
 * by hand against the shape below so every mistake is reported with the key's line. A schema validator
 * would say "must NOT have additional properties" at a JSON pointer; a person editing YAML needs the
 * line and the name of the key.
 *
 *   base: scratch | <image pinned by digest: docker://reg/x@sha256:… | oci:DIR@sha256:…>
 *   platforms: [linux/amd64, linux/arm64]
 *   layers:
 *     - files:
 *         - {src: ./bin/app-${arch}, dest: /usr/bin/app, mode: "0755", uid: 0, gid: 0}
 *         - {src: ./config/, dest: /etc/app/}
 *         - {dest: /var/lib/app, type: directory, uid: 65532, gid: 65532}
 *         - {dest: /usr/bin/app2, type: symlink, target: app}
 *         - {dest: /usr/bin/app3, type: hardlink, target: /usr/bin/app}
 *   config: {entrypoint, cmd, env, user, workdir, labels, exposedPorts, volumes, stopSignal}
 *   annotations: {key: value}
 *
 * Deliberate strictness: values that YAML would silently retype are refused or read from their source
 * text. `mode` is always octal, quoted or not (YAML 1.2 reads an unquoted 0755 as decimal 755); env,
 * labels and annotations must be strings (YAML turns `1.10` into 1.1).
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type Document } from 'yaml';
import { fsError, LadingError } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import { isDigest } from '../oci/digest.js';
import { parsePlatform, formatPlatform } from '../oci/platform.js';
import type { Platform } from '../oci/types.js';
import { normalizePath } from '../fs/tree.js';
import { parseTransportRef, type TransportRef } from '../store/transport.js';

export type BaseSpec =
  | { kind: 'scratch' }
  | {
      kind: 'image';
      /** The reference as written in the spec (it becomes the base.name annotation). */
      ref: string;
      transport: TransportRef;
      /** The digest the spec pins, when it does. */
      pinned: Digest | undefined;
      line: number;
    };

interface Located {
  /** 1-based line of the entry in the spec. */
  line: number;
  /** Where the entry is, for messages: `layers[0].files[2]`. */
  at: string;
}

export type FileSpec =
  | (Located & { kind: 'copy'; src: string; dest: string; destIsDir: boolean; mode?: number; uid?: number; gid?: number })
  | (Located & { kind: 'directory'; dest: string; mode?: number; uid?: number; gid?: number })
  | (Located & { kind: 'symlink'; dest: string; target: string; uid?: number; gid?: number })
  | (Located & { kind: 'hardlink'; dest: string; target: string });

export interface LayerSpec extends Located {
  files: FileSpec[];
}

export interface ConfigSpec {
  entrypoint?: string[];
  cmd?: string[];
  env?: [string, string][];
  user?: string;
  workdir?: string;
  labels?: Record<string, string>;
  exposedPorts?: string[];
  volumes?: string[];
  stopSignal?: string;
}

export interface BuildSpec {
  /** Absolute path of the spec file. */
  path: string;
  /** The spec's directory: `src` paths are relative to it and must stay inside it unless allowed. */
  dir: string;
  base: BaseSpec;
  /** As listed; undefined when the spec names none (the build then picks, see build-plan.ts). */
  platforms: Platform[] | undefined;
  layers: LayerSpec[];
  config: ConfigSpec;
  annotations: Record<string, string>;
}

const TOP_KEYS = ['base', 'platforms', 'layers', 'config', 'annotations'];
const LAYER_KEYS = ['files'];
const FILE_KEYS = ['src', 'dest', 'type', 'target', 'mode', 'uid', 'gid'];
const CONFIG_KEYS = ['entrypoint', 'cmd', 'env', 'user', 'workdir', 'labels', 'exposedPorts', 'volumes', 'stopSignal'];
const FILE_TYPES = ['file', 'directory', 'symlink', 'hardlink'];
const VARIABLES = new Set(['arch', 'os', 'variant']);
const MAX_ID = 4294967294;

/** Reads and checks the spec at `path`. */
export async function readSpec(path: string): Promise<BuildSpec> {
  const abs = resolvePath(path);
  const text = await readFile(abs, 'utf8').catch((e: unknown) => {
    throw fsError(e, 'read the build spec', abs);
  });
  return parseSpec(text, abs);
}

/** Parses spec text; `path` names the file in messages and anchors relative paths. */
export function parseSpec(text: string, path: string): BuildSpec {
  const lines = new LineCounter();
  // Duplicate keys are found by the parser below, which can name the key and both lines.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const p = new SpecParser(text, path, lines, doc);
  const first = doc.errors[0];
  if (first !== undefined) throw p.error(first.linePos?.[0].line ?? 1, `not valid YAML: ${first.message.split('\n')[0]}`);
  return p.parse();
}

class SpecParser {
  constructor(
    private readonly text: string,
    private readonly path: string,
    private readonly lines: LineCounter,
    private readonly doc: Document,
  ) {}

  error(line: number, message: string): LadingError {
    return new LadingError('INVALID_SPEC', `${this.path} line ${line}: ${message}`, { spec: this.path, line: String(line) });
  }

  parse(): BuildSpec {
    const root = this.deref(this.doc.contents as Node | null);
    if (root === null || !isMap(root)) throw this.error(1, 'the spec must be a mapping with at least a "base" key');
    const top = this.fields(root, TOP_KEYS, 'the spec');
    const baseNode = top.get('base');
    if (baseNode === undefined) throw this.error(1, 'missing "base": write `base: scratch` or an image pinned by digest');
    const spec: BuildSpec = {
      path: this.path,
      dir: dirname(this.path),
      base: this.base(baseNode),
      platforms: undefined,
      layers: [],
      config: {},
      annotations: {},
    };
    const platforms = top.get('platforms');
    if (platforms !== undefined) spec.platforms = this.platforms(platforms);
    const layers = top.get('layers');
    if (layers !== undefined) {
      spec.layers = this.seq(layers, 'layers').map((n, i) => this.layer(n, `layers[${i}]`));
    }
    const config = top.get('config');
    if (config !== undefined) spec.config = this.config(config);
    const annotations = top.get('annotations');
    if (annotations !== undefined) spec.annotations = Object.fromEntries(this.stringMap(annotations, 'annotations'));
    return spec;
  }

  private base(node: Node): BaseSpec {
    const line = this.line(node);
    const ref = this.string(node, 'base');
    if (ref === 'scratch') return { kind: 'scratch' };
    let transport: TransportRef;
    try {
      transport = parseTransportRef(ref);
    } catch (e) {
      throw this.error(line, `base: ${(e as Error).message}`);
    }
    let pinned: Digest | undefined;
    if (transport.transport === 'docker') pinned = transport.image.digest;
    else if (transport.ref !== undefined && isDigest(transport.ref)) pinned = transport.ref;
    return { kind: 'image', ref, transport, pinned, line };
  }

  private platforms(node: Node): Platform[] {
    const items = this.seq(node, 'platforms');
    if (items.length === 0) throw this.error(this.line(node), 'platforms: list at least one, e.g. [linux/amd64]');
    const seen = new Set<string>();
    return items.map((n, i) => {
      const s = this.string(n, `platforms[${i}]`);
      let p: Platform;
      try {
        p = parsePlatform(s);
      } catch (e) {
        throw this.error(this.line(n), `platforms[${i}]: ${(e as Error).message}`);
      }
      const key = formatPlatform(p);
      if (seen.has(key)) throw this.error(this.line(n), `platforms[${i}]: ${s} is listed twice`);
      seen.add(key);
      return p;
    });
  }

  private layer(node: Node, at: string): LayerSpec {
    const line = this.line(node);
    const m = this.map(node, at);
    const f = this.fields(m, LAYER_KEYS, at);
    const files = f.get('files');
    if (files === undefined) throw this.error(line, `${at}: missing "files" (a layer is a list of files)`);
    return { line, at, files: this.seq(files, `${at}.files`).map((n, i) => this.file(n, `${at}.files[${i}]`)) };
  }

  private file(node: Node, at: string): FileSpec {
    const line = this.line(node);
    const f = this.fields(this.map(node, at), FILE_KEYS, at);
    const typeNode = f.get('type');
    const type = typeNode === undefined ? 'file' : this.string(typeNode, `${at}.type`);
    if (!FILE_TYPES.includes(type)) {
      throw this.error(this.line(typeNode!), `${at}.type: "${type}" is not a type: use ${FILE_TYPES.join(', ')}`);
    }
    const destNode = f.get('dest');
    if (destNode === undefined) throw this.error(line, `${at}: missing "dest" (the absolute path in the image)`);
    const destRaw = this.string(destNode, `${at}.dest`);
    const dest = this.imagePath(destRaw, destNode, `${at}.dest`);
    const refuse = (key: string, why: string) => {
      const n = f.get(key);
      if (n !== undefined) throw this.error(this.line(n), `${at}.${key}: ${why}`);
    };
    const owner = () => ({
      ...(f.has('uid') && { uid: this.id(f.get('uid')!, `${at}.uid`) }),
      ...(f.has('gid') && { gid: this.id(f.get('gid')!, `${at}.gid`) }),
    });
    const mode = () => (f.has('mode') ? { mode: this.mode(f.get('mode')!, `${at}.mode`) } : {});
    const located = { line, at };
    switch (type) {
      case 'file': {
        refuse('target', 'only symlinks and hardlinks have a target');
        const srcNode = f.get('src');
        if (srcNode === undefined) throw this.error(line, `${at}: missing "src" (the file or directory to copy, relative to the spec)`);
        const src = this.string(srcNode, `${at}.src`);
        if (src === '') throw this.error(this.line(srcNode), `${at}.src: must not be empty`);
        for (const m of src.matchAll(/\$\{([^}]*)\}/g)) {
          if (!VARIABLES.has(m[1]!)) {
            throw this.error(this.line(srcNode), `${at}.src: unknown variable \${${m[1]}}: use \${arch}, \${os} or \${variant}`);
          }
        }
        if (dest === '')
          throw this.error(this.line(destNode), `${at}.dest: name a path below / (a directory's contents may go to / only as src: ./dir/)`);
        return { ...located, kind: 'copy', src, dest, destIsDir: destRaw.endsWith('/'), ...mode(), ...owner() };
      }
      case 'directory':
        refuse('src', 'a directory entry has no src (to copy a directory, leave out type)');
        refuse('target', 'only symlinks and hardlinks have a target');
        if (dest === '') throw this.error(this.line(destNode), `${at}.dest: the root directory cannot be declared`);
        return { ...located, kind: 'directory', dest, ...mode(), ...owner() };
      case 'symlink': {
        refuse('src', 'a symlink has a target, not a src');
        refuse('mode', 'symlinks have no mode of their own (always 0777)');
        const t = f.get('target');
        if (t === undefined) throw this.error(line, `${at}: missing "target" (what the symlink points at)`);
        const target = this.string(t, `${at}.target`);
        if (target === '' || target.includes('\0')) throw this.error(this.line(t), `${at}.target: must be a non-empty path`);
        if (dest === '') throw this.error(this.line(destNode), `${at}.dest: the root cannot be a symlink`);
        return { ...located, kind: 'symlink', dest, target, ...owner() };
      }
      default: {
        refuse('src', 'a hardlink has a target, not a src');
        for (const k of ['mode', 'uid', 'gid']) refuse(k, "a hardlink shares its target's mode and owner");
        const t = f.get('target');
        if (t === undefined) throw this.error(line, `${at}: missing "target" (the absolute path of the file to link to)`);
        const target = this.imagePath(this.string(t, `${at}.target`), t, `${at}.target`);
        if (dest === '') throw this.error(this.line(destNode), `${at}.dest: the root cannot be a hardlink`);
        return { ...located, kind: 'hardlink', dest, target };
      }
    }
  }

  private config(node: Node): ConfigSpec {
    const f = this.fields(this.map(node, 'config'), CONFIG_KEYS, 'config');
    const out: ConfigSpec = {};
    const get = (k: string) => f.get(k);
    if (get('entrypoint')) out.entrypoint = this.stringList(get('entrypoint')!, 'config.entrypoint');
    if (get('cmd')) out.cmd = this.stringList(get('cmd')!, 'config.cmd');
    if (get('env')) {
      out.env = this.stringMap(get('env')!, 'config.env');
      for (const [k] of out.env) {
        if (k === '' || k.includes('=')) throw this.error(this.line(get('env')!), `config.env: "${k}" is not a variable name`);
      }
    }
    if (get('user')) out.user = this.string(get('user')!, 'config.user');
    if (get('workdir')) out.workdir = this.string(get('workdir')!, 'config.workdir');
    if (get('labels')) out.labels = Object.fromEntries(this.stringMap(get('labels')!, 'config.labels'));
    if (get('exposedPorts')) {
      out.exposedPorts = this.seq(get('exposedPorts')!, 'config.exposedPorts').map((n, i) => {
        const raw = this.scalarText(n, `config.exposedPorts[${i}]`);
        const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(raw);
        if (m === null || Number(m[1]) > 65535) {
          throw this.error(this.line(n), `config.exposedPorts[${i}]: "${raw}" is not a port: write 8080 or 8080/tcp (udp, sctp)`);
        }
        return `${Number(m[1])}/${m[2] ?? 'tcp'}`;
      });
    }
    if (get('volumes')) out.volumes = this.stringList(get('volumes')!, 'config.volumes');
    if (get('stopSignal')) out.stopSignal = this.string(get('stopSignal')!, 'config.stopSignal');
    return out;
  }

  /** The key/value nodes of a mapping, refusing keys not in `allowed` (with the key's line). */
  private fields(node: Node, allowed: string[], at: string): Map<string, Node> {
    const m = this.map(node, at);
    const out = new Map<string, Node>();
    const lines = new Map<string, number>();
    for (const pair of m.items) {
      const keyNode = this.deref(pair.key as Node);
      const key = keyNode !== null && isScalar(keyNode) ? String(keyNode.value) : undefined;
      const line = keyNode === null ? this.line(node) : this.line(keyNode);
      if (key === undefined || !allowed.includes(key)) {
        throw this.error(line, `unknown key "${key ?? '?'}" in ${at}: allowed keys are ${allowed.join(', ')}`);
      }
      if (out.has(key)) throw this.error(line, `key "${key}" is given twice in ${at} (first on line ${lines.get(key)})`);
      lines.set(key, line);
      const value = this.deref(pair.value as Node | null);
      if (value === null || (isScalar(value) && value.value === null)) throw this.error(line, `${at}.${key} has no value`);
      out.set(key, value);
    }
    return out;
  }

  private map(node: Node, at: string) {
    if (!isMap(node)) throw this.error(this.line(node), `${at} must be a mapping (key: value)`);
    return node;
  }

  private seq(node: Node, at: string): Node[] {
    if (!isSeq(node)) throw this.error(this.line(node), `${at} must be a list`);
    return node.items.map((n, i) => {
      const d = this.deref(n as Node | null);
      if (d === null) throw this.error(this.line(node), `${at}[${i}] is empty`);
      return d;
    });
  }

  private string(node: Node, at: string): string {
    if (!isScalar(node) || typeof node.value !== 'string') {
      const shown = isScalar(node) ? this.source(node) : isSeq(node) ? 'a list' : 'a mapping';
      throw this.error(this.line(node), `${at} must be a string, not ${shown}${isScalar(node) ? ': quote it' : ''}`);
    }
    return node.value;
  }

  private stringList(node: Node, at: string): string[] {
    if (isScalar(node)) throw this.error(this.line(node), `${at} must be a list of strings, e.g. ["/usr/bin/app", "--flag"]`);
    return this.seq(node, at).map((n, i) => this.string(n, `${at}[${i}]`));
  }

  /** A mapping of string to string, in the spec's order. */
  private stringMap(node: Node, at: string): [string, string][] {
    const m = this.map(node, at);
    const seen = new Map<string, number>();
    return m.items.map((pair) => {
      const k = this.deref(pair.key as Node);
      if (k === null || !isScalar(k)) throw this.error(this.line(node), `${at}: keys must be strings`);
      const key = String(k.value);
      if (seen.has(key)) throw this.error(this.line(k), `key "${key}" is given twice in ${at} (first on line ${seen.get(key)})`);
      seen.set(key, this.line(k));
      const v = this.deref(pair.value as Node | null);
      if (v === null) throw this.error(this.line(k), `${at}.${key} has no value`);
      return [key, this.string(v, `${at}.${key}`)] as [string, string];
    });
  }

  /** A scalar's text as written in the spec (quotes removed), for values YAML would retype. */
  private scalarText(node: Node, at: string): string {
    if (!isScalar(node)) throw this.error(this.line(node), `${at} must be a single value`);
    if (typeof node.value === 'string') return node.value;
    return this.source(node);
  }

  private source(node: Node): string {
    const r = node.range;
    return r ? this.text.slice(r[0], r[1]).replace(/^["']|["']$/g, '') : String((node as { value?: unknown }).value);
  }

  private mode(node: Node, at: string): number {
    const raw = this.scalarText(node, at);
    const m = /^(?:0o|0)?([0-7]{1,4})$/.exec(raw);
    if (m === null) throw this.error(this.line(node), `${at}: "${raw}" is not an octal mode: write e.g. "0755" or "0644"`);
    return parseInt(m[1]!, 8);
  }

  private id(node: Node, at: string): number {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID) {
      throw this.error(this.line(node), `${at} must be a numeric id from 0 to ${MAX_ID}`);
    }
    return v;
  }

  /** An absolute path in the image, in tree form ('' is the root). */
  private imagePath(raw: string, node: Node, at: string): string {
    if (!raw.startsWith('/')) throw this.error(this.line(node), `${at}: "${raw}" must be an absolute path in the image (start with /)`);
    try {
      return normalizePath(raw);
    } catch (e) {
      throw this.error(this.line(node), `${at}: ${(e as Error).message}`);
    }
  }

  private deref(node: Node | null | undefined): Node | null {
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return node;
  }

  line(node: Node): number {
    return node.range ? this.lines.linePos(node.range[0]).line : 1;
  }
}

/** `src` with `${arch}`, `${os}` and `${variant}` replaced for `platform`. */
export function substitute(src: string, platform: Platform): string {
  return src.replace(/\$\{(arch|os|variant)\}/g, (_m, name: string) =>
    name === 'arch' ? platform.architecture : name === 'os' ? platform.os : (platform.variant ?? ''),
  );
}
