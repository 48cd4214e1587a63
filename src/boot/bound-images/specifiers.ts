/**
 * systemd specifiers (`%n`, `%E`, …) in bound-image values. They expand only on the booted machine,
 * so a value that uses one cannot be known from the image; bootc refuses them, and so do we. `%%` is
 * the escape for a literal `%` and becomes one.
 */
import { LadingError } from '../../errors.js';

/** `%%` -> `%`; any other `%x`, or a `%` at the end, is an error naming the value. */
export function unescapeSpecifiers(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const next = value[i + 1];
    if (next === undefined) throw new LadingError('INVALID_BOUND_IMAGE', `Unterminated % in ${value}`, { value });
    if (next !== '%') {
      throw new LadingError('INVALID_BOUND_IMAGE', `Systemd specifiers are not supported by bound images: ${value}`, { value });
    }
    out += '%';
    i++;
  }
  return out;
}
