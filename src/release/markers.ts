/**
 * The placeholders a binary reserves so it can be locked to a release after it was built, byte for byte
 * the ones OpenShift's installer and `oc adm release extract` use, and the rule for reading a value back.
 *
 * A marker is NUL, a name, NUL, a run of `X` padding, NUL. Pinning writes the value and one NUL over the
 * start of the marker and leaves the rest as it was, so the marker's length never changes and nothing else
 * in the binary moves. Reading follows the installer's `Default()`: a value starting with NUL means the
 * marker is untouched ("unpatched"); otherwise the value runs up to the first NUL; no NUL, or an empty
 * value, means the binary was patched wrongly.
 *
 * The markers are built at run time rather than written as literals so no file of Lading's (source or
 * built) ever holds one: pinning a directory of tools must not find a marker inside Lading itself. (oc
 * spells its literals with `!` in place of the first NUL for the same reason.)
 */
import { LadingError } from '../errors.js';

export type MarkerKind = 'image' | 'version' | 'arch';

export interface MarkerSpec {
  kind: MarkerKind;
  /** What messages call it (oc's names): "release image", "release version", "release architecture". */
  name: string;
  /** The name between the NULs. */
  label: string;
  /** How many `X` pad it. */
  padding: number;
  /** The whole marker. */
  bytes: Buffer;
  /** The longest value it can hold: its length less one (the value's NUL may take the marker's last byte). */
  maxValue: number;
}

function spec(kind: MarkerKind, name: string, label: string, padding: number): MarkerSpec {
  const bytes = Buffer.concat([
    Buffer.from([0]),
    Buffer.from(label, 'latin1'),
    Buffer.from([0]),
    Buffer.alloc(padding, 0x58),
    Buffer.from([0]),
  ]);
  return { kind, name, label, padding, bytes, maxValue: bytes.length - 1 };
}

/** In the order oc applies them. */
export const MARKERS: Readonly<Record<MarkerKind, MarkerSpec>> = {
  image: spec('image', 'release image', '_RELEASE_IMAGE_LOCATION_', 300),
  version: spec('version', 'release version', '_RELEASE_VERSION_LOCATION_', 64),
  arch: spec('arch', 'release architecture', '_RELEASE_ARCHITECTURE_LOCATION_', 64),
};

export const MARKER_KINDS: readonly MarkerKind[] = ['image', 'version', 'arch'];

/** A marker to replace and the value that goes into it. `marker` need not be one of MARKERS (tests use tiny ones). */
export interface Replacement {
  name: string;
  marker: Uint8Array;
  value: Uint8Array;
}

/**
 * Checks a value before anything is written: it must fit (oc's message, word for word), and be printable
 * ASCII without quotes or backslashes. Pull specs, versions and architectures always are; a NUL would cut
 * the value short, and a quote, a backslash or a multi-byte character would break a marker carried in a
 * JavaScript string literal (pinned-values.ts).
 */
export function checkReplacement(r: Replacement): void {
  const max = r.marker.length - 1;
  if (r.value.length > max) {
    throw new LadingError('USAGE', `the ${r.name} value has ${r.value.length} bytes, but the maximum replacement length is ${max}`, {
      marker: r.name,
    });
  }
  if (r.value.length === 0) throw new LadingError('USAGE', `the ${r.name} value is empty: a pinned binary would refuse it`);
  const bad = r.value.findIndex((b) => b < 0x20 || b > 0x7e || b === 0x22 || b === 0x27 || b === 0x5c || b === 0x60);
  if (bad !== -1) {
    throw new LadingError(
      'USAGE',
      `the ${r.name} value has byte 0x${r.value[bad]!.toString(16).padStart(2, '0')} at ${bad}: values must be printable ASCII without quotes or backslashes`,
    );
  }
}

export function replacementFor(kind: MarkerKind, value: string): Replacement {
  const m = MARKERS[kind];
  return { name: m.name, marker: m.bytes, value: Buffer.from(value, 'utf8') };
}

/** What a marker-sized window of bytes says, read as the installer does. */
export type MarkerValue = { state: 'unpatched' } | { state: 'pinned'; value: string };

/**
 * Reads the value held in `window`, the bytes where the marker was (its full length). Throws, with the
 * installer's reasons, when the value has no NUL before the end or is empty.
 */
export function readMarkerWindow(window: Uint8Array, m: MarkerSpec): MarkerValue {
  if (
    window.length >= m.label.length + 2 &&
    window[0] === 0 &&
    Buffer.from(window.subarray(0, m.label.length + 2)).equals(m.bytes.subarray(0, m.label.length + 2))
  ) {
    return { state: 'unpatched' };
  }
  const nul = window.indexOf(0);
  if (nul === -1) {
    throw new LadingError(
      'INVALID_PINNED_VALUE',
      `the ${m.name} was replaced but without a NUL terminator within ${m.bytes.length} bytes`,
      {
        marker: m.name,
      },
    );
  }
  if (nul === 0)
    throw new LadingError('INVALID_PINNED_VALUE', `the ${m.name} is empty: this binary was pinned incorrectly`, { marker: m.name });
  return { state: 'pinned', value: Buffer.from(window.subarray(0, nul)).toString('utf8') };
}
