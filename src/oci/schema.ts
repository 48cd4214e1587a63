/**
 * Validation against the OCI image-spec JSON schemas shipped in `<package>/schemas/` (copied unchanged
 * from opencontainers/image-spec; see schemas/SOURCE.md). Using the spec's own schemas, rather than
 * re-stating them in code, keeps Lading in step with the spec; `parse.ts` adds the rules they cannot say.
 *
 * The schemas are draft-04 and are compiled with ajv-draft-04, once per process, on first use. Three
 * things about them need handling here:
 *  - References: files refer to each other by relative name (`"$ref": "defs-descriptor.json#/..."`),
 *    but their `id`s sit in different URI folders, two files have no `id`, and nested `id`s change the
 *    base URI, so resolving the names as URIs (as ajv does) finds nothing. image-spec's Go validator maps
 *    URIs to its embedded files by name; we do the same by rewriting each cross-file `$ref` to the key
 *    its file is registered under: its `id`, or `https://opencontainers.org/schema/<file>` if it has none.
 *  - Formats: `urls` items are `"format": "uri"`, `created` is `"format": "date-time"`. ajv 8 ships no
 *    formats, and `validateFormats: false` would let `created: "yesterday"` through, which Go tools (the
 *    other end of every copy) fail to decode. We add both: an absolute URI with a scheme, and RFC 3339.
 *  - `defs.json` uses the non-standard annotation keyword `media`; it is declared so strict mode holds.
 *
 * Compiling them costs ~150 ms (loading ajv, checking the schemas, generating code), paid by every
 * command that reads a layout. So `npm run build` compiles them once into `dist/oci/schema-validators.js`
 * (ajv's standalone code, scripts/gen-schema-validators.mjs), which the compiled CLI loads instead;
 * running from the TypeScript sources (tests), they are compiled here on first use, with the same ajv
 * options, and test/oci/schema.test.ts checks that both give the same answers.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type AjvModule from 'ajv-draft-04';
import type { ErrorObject, Options, ValidateFunction } from 'ajv-draft-04';
import { fsError, LadingError } from '../errors.js';
import { schemaFormats } from './schema-formats.js';

type Ajv = InstanceType<typeof AjvModule.default>;

export type SchemaKind = 'manifest' | 'index' | 'config' | 'layout' | 'descriptor';

/** Relative to this module: `src/oci/` under tsx and `dist/oci/` when compiled both sit two levels down. */
const SCHEMA_DIR = new URL('../../schemas/', import.meta.url);

const ROOT_FILES: Readonly<Record<SchemaKind, string>> = {
  manifest: 'image-manifest-schema.json',
  index: 'image-index-schema.json',
  config: 'config-schema.json',
  layout: 'image-layout-schema.json',
  descriptor: 'content-descriptor.json',
};
const DEF_FILES = ['defs.json', 'defs-descriptor.json'];
const ID_LESS_BASE = 'https://opencontainers.org/schema/';

/** Where the build writes the precompiled validators (absent when running from the sources). */
const GENERATED = './schema-validators.js';
const precompiled = (await import(GENERATED).catch(() => undefined)) as Record<SchemaKind, ValidateFunction> | undefined;

let compiled: Record<SchemaKind, ValidateFunction> | undefined;

/**
 * Throws unless `value` satisfies the OCI schema for `kind`. The error names `what`, the JSON pointer of
 * the first problem and the complaint, on one line:
 *   `manifest sha256:ab12… in oci:/x is invalid: /layers/0/digest must match pattern "^[a-z0-9]+…"`.
 * The code is INVALID_LAYOUT for `layout`, otherwise INVALID_MANIFEST unless `code` says otherwise (a
 * layout's index.json is an index, but a bad one is a bad layout).
 */
export function validateAgainstSchema(
  kind: SchemaKind,
  value: unknown,
  what: string,
  code: 'INVALID_MANIFEST' | 'INVALID_LAYOUT' = kind === 'layout' ? 'INVALID_LAYOUT' : 'INVALID_MANIFEST',
): void {
  const validate = validator(kind);
  if (validate(value)) return;
  const error = validate.errors?.[0];
  const { pointer, complaint } = error === undefined ? { pointer: '', complaint: 'is invalid' } : describe(error);
  throw new LadingError(code, `${what} is invalid: ${pointer || '(top level)'} ${complaint}`, {
    pointer,
    schema: error?.schemaPath ?? '',
  });
}

function validator(kind: SchemaKind): ValidateFunction {
  const validate = precompiled?.[kind];
  if (validate !== undefined) return validate;
  compiled ??= compileAll();
  return compiled[kind];
}

function compileAll(): Record<SchemaKind, ValidateFunction> {
  const { ajv, keys } = createOciAjv();
  const out = {} as Record<SchemaKind, ValidateFunction>;
  for (const kind of Object.keys(ROOT_FILES) as SchemaKind[]) {
    const validate = ajv.getSchema(keys[kind]);
    if (validate === undefined) throw new Error(`OCI schema for ${kind} is not registered`);
    out[kind] = validate;
  }
  return out;
}

/**
 * An ajv instance holding every OCI schema, and the key each root schema is registered under. `code`
 * is for the build's standalone compilation. ajv is loaded only here (synchronously: it is CommonJS).
 */
export function createOciAjv(code?: Options['code']): { ajv: Ajv; keys: Record<SchemaKind, string> } {
  // ajv-draft-04 is CommonJS (`module.exports = Ajv; exports.default = Ajv`).
  const Ajv = (createRequire(import.meta.url)('ajv-draft-04') as typeof AjvModule).default;
  const ajv = new Ajv({ allErrors: false, strict: true, ...(code === undefined ? {} : { code }) });
  ajv.addKeyword({ keyword: 'media', schemaType: 'object' });
  ajv.addFormat('uri', schemaFormats.uri);
  ajv.addFormat('date-time', schemaFormats['date-time']);

  const files = [...Object.values(ROOT_FILES), ...DEF_FILES];
  const schemas = new Map<string, Record<string, unknown>>();
  const keyOf = new Map<string, string>();
  for (const file of files) {
    const schema = readSchema(file);
    schemas.set(file, schema);
    keyOf.set(file, typeof schema.id === 'string' ? schema.id : `${ID_LESS_BASE}${file}`);
  }
  for (const [file, schema] of schemas) {
    rewriteRefs(schema, keyOf, file);
    // A schema with an `id` is registered under it; ajv uses the key only for the id-less ones.
    ajv.addSchema(schema, typeof schema.id === 'string' ? undefined : keyOf.get(file));
  }
  const keys = Object.fromEntries(Object.entries(ROOT_FILES).map(([kind, file]) => [kind, keyOf.get(file) ?? file])) as Record<
    SchemaKind,
    string
  >;
  return { ajv, keys };
}

function readSchema(file: string): Record<string, unknown> {
  const url = new URL(file, SCHEMA_DIR);
  let text: string;
  try {
    text = readFileSync(url, 'utf8');
  } catch (err) {
    throw fsError(err, 'read the OCI schema', fileURLToPath(url));
  }
  return JSON.parse(text) as Record<string, unknown>;
}

/** Points every `"$ref": "<file>.json#…"` at the key its file is registered under; local refs stay. */
function rewriteRefs(node: unknown, keyOf: ReadonlyMap<string, string>, file: string): void {
  if (Array.isArray(node)) {
    for (const item of node) rewriteRefs(item, keyOf, file);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const obj = node as Record<string, unknown>;
  const ref = obj.$ref;
  if (typeof ref === 'string' && !ref.startsWith('#')) {
    const hash = ref.indexOf('#');
    const target = hash < 0 ? ref : ref.slice(0, hash);
    const key = keyOf.get(target);
    if (key === undefined) throw new Error(`OCI schema ${file} refers to ${ref}, which Lading does not ship`);
    obj.$ref = hash < 0 ? key : `${key}${ref.slice(hash)}`;
  }
  for (const [k, v] of Object.entries(obj)) if (k !== '$ref') rewriteRefs(v, keyOf, file);
}

function describe(error: ErrorObject): { pointer: string; complaint: string } {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { pointer: `${error.instancePath}/${escapePointer(String(params.missingProperty))}`, complaint: 'is required' };
    case 'enum':
      return {
        pointer: error.instancePath,
        complaint: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    default:
      return { pointer: error.instancePath, complaint: (error.message ?? 'is invalid').replace(/\s+/g, ' ') };
  }
}

function escapePointer(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}
