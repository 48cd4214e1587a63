/**
 * The mirror-set file: the YAML list of images a site wants carried across the air gap, read into
 * normalized references. It exists apart from the copy code so that a bad file fails before anything is
 * copied, with one `FILE:LINE:COL: message` line per problem pointing at the exact node to fix, and so
 * that the same image listed twice is copied once.
 */
import { type Document, isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import { isLadingError, LadingError } from '../errors.js';
import { parsePlatform, platformMatches } from '../oci/platform.js';
import { formatReference, type ImageReference, parseImageReference, withDefaultTag } from '../oci/reference.js';
import type { Platform } from '../oci/types.js';

export interface MirrorSetImage {
  /** Normalized source; has a tag or a digest (a name with neither gets 'latest', as docker does). */
  source: ImageReference;
  /** Platforms to keep from an index; 'all' (the default) keeps the whole index. */
  platforms: 'all' | Platform[];
}

export interface MirrorSet {
  images: MirrorSetImage[];
}

const DOCKER_PREFIX = 'docker://';
// skopeo's local transports, and any URL-like scheme: none of them names a registry image.
const LOCAL_TRANSPORT = /^(oci|oci-archive|containers-storage|docker-daemon|docker-archive|dir|sif|ostree|tarball):/;
const URL_SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
const NAME_HINT = 'name images as docker://HOST/REPO:TAG or HOST/REPO@sha256:...';

/**
 * Parses a mirror-set file. `file` is used only in messages. Throws INVALID_MIRROR_SET, whose message is
 * one line `FILE:LINE:COL: what is wrong`, for YAML syntax errors and for anything the format does not allow.
 */
export function parseMirrorSet(text: string, file: string): MirrorSet {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });

  const failAtOffset = (offset: number, message: string): never => {
    const { line, col } = lineCounter.linePos(offset);
    throw new LadingError('INVALID_MIRROR_SET', `${file}:${line}:${col}: ${message.replace(/\s*\n\s*/g, ' ')}`, {
      file,
      line: String(line),
      column: String(col),
    });
  };
  const fail = (node: unknown, message: string): never => failAtOffset(isNode(node) ? (node.range?.[0] ?? 0) : 0, message);

  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const message =
      syntax.code === 'MULTIPLE_DOCS' ? 'a mirror set is a single YAML document (remove this "---" and what follows)' : syntax.message;
    failAtOffset(syntax.pos[0], message);
  }

  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return failAtOffset(0, 'the mirror set is empty: it needs images:');
  if (!isMap(root)) return fail(root, 'expected a mapping with images:');

  let imagesNode: unknown;
  let imagesKey: unknown;
  for (const pair of root.items) {
    const key = keyName(pair.key);
    if (key === 'images') {
      imagesKey = pair.key;
      imagesNode = pair.value;
    } else if (key === 'releases') {
      fail(pair.key, 'releases: is not supported yet');
    } else {
      fail(pair.key, `unknown key ${describeKey(pair.key)}: a mirror set has images:`);
    }
  }
  if (imagesKey === undefined) return fail(root, 'missing images: (the list of images to mirror)');

  const images = deref(doc, imagesNode);
  if (images === null || images === undefined || (isScalar(images) && images.value === null)) {
    return fail(imagesKey, 'images: lists no images');
  }
  if (!isSeq(images)) return fail(imagesNode, 'images: must be a list, e.g. "- name: quay.io/org/app:1.2"');
  if (images.items.length === 0) return fail(imagesNode, 'images: lists no images');

  const merged = new Map<string, MirrorSetImage>();
  for (const item of images.items) {
    const image = parseImage(doc, item, fail);
    const key = formatReference(image.source);
    const seen = merged.get(key);
    if (seen === undefined) merged.set(key, image);
    else seen.platforms = mergePlatforms(seen.platforms, image.platforms);
  }
  return { images: [...merged.values()] };
}

type Fail = (node: unknown, message: string) => never;

function parseImage(doc: Document, item: unknown, fail: Fail): MirrorSetImage {
  const entry = deref(doc, item);
  if (!isMap(entry)) return fail(item, 'an image must be a mapping, e.g. "- name: quay.io/org/app:1.2"');
  let nameNode: unknown;
  let hasName = false;
  let platformsNode: unknown;
  let hasPlatforms = false;
  for (const pair of entry.items) {
    const key = keyName(pair.key);
    if (key === 'name') {
      hasName = true;
      nameNode = pair.value;
    } else if (key === 'platforms') {
      hasPlatforms = true;
      platformsNode = pair.value;
    } else {
      fail(pair.key, `unknown key ${describeKey(pair.key)} in an image: expected name or platforms`);
    }
  }
  if (!hasName) return fail(item, 'an image needs name:');
  const source = parseName(doc, nameNode, fail);
  const platforms = hasPlatforms ? parsePlatforms(doc, platformsNode, fail) : 'all';
  return { source, platforms };
}

function parseName(doc: Document, node: unknown, fail: Fail): ImageReference {
  const value = deref(doc, node);
  if (!isScalar(value) || value.value === null || value.value === '') return fail(node, 'name: is empty');
  if (typeof value.value !== 'string') return fail(node, `name: must be an image reference, not ${JSON.stringify(value.value)}`);
  let name = value.value;
  if (name.startsWith(DOCKER_PREFIX)) {
    name = name.slice(DOCKER_PREFIX.length);
  } else {
    const transport = LOCAL_TRANSPORT.exec(name)?.[1] ?? URL_SCHEME.exec(name)?.[1];
    if (transport !== undefined) {
      return fail(node, `name: transport "${transport}:" cannot be mirrored from a mirror set: ${NAME_HINT}`);
    }
  }
  try {
    return withDefaultTag(parseImageReference(name));
  } catch (e) {
    if (isLadingError(e)) return fail(node, e.message);
    throw e;
  }
}

function parsePlatforms(doc: Document, node: unknown, fail: Fail): 'all' | Platform[] {
  const value = deref(doc, node);
  if (isScalar(value) && value.value === 'all') return 'all';
  if (!isSeq(value)) return fail(node, 'platforms: must be a list like [linux/amd64, linux/arm64], or all');
  if (value.items.length === 0) return fail(node, 'platforms: lists no platforms (leave it out to keep them all)');
  const out: Platform[] = [];
  for (const item of value.items) {
    const p = deref(doc, item);
    if (!isScalar(p) || typeof p.value !== 'string') return fail(item, 'a platform must be a string like linux/amd64');
    let platform: Platform;
    try {
      platform = parsePlatform(p.value);
    } catch (e) {
      if (isLadingError(e)) return fail(item, e.message);
      throw e;
    }
    addPlatform(out, platform);
  }
  return out;
}

/** The union of two platform selections: 'all' wins; lists keep their first-seen order. */
function mergePlatforms(a: 'all' | Platform[], b: 'all' | Platform[]): 'all' | Platform[] {
  if (a === 'all' || b === 'all') return 'all';
  const out = [...a];
  for (const p of b) addPlatform(out, p);
  return out;
}

function addPlatform(list: Platform[], p: Platform): void {
  if (!list.some((q) => platformMatches(q, p))) list.push(p);
}

/** An alias (`*name`) stands for the node its anchor marks; anything else is itself. */
function deref(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function keyName(key: unknown): string | undefined {
  return isScalar(key) && typeof key.value === 'string' ? key.value : undefined;
}

function describeKey(key: unknown): string {
  if (isScalar(key)) return JSON.stringify(String(key.value));
  return '(not a string)';
}
