/**
 * WWW-Authenticate parsing (RFC 7235 §4.1) and distribution token scopes. A registry's 401 names how to
 * authenticate; the header may carry several challenges, each a scheme followed by either a token68
 * (ignored here: no registry scheme we speak uses one) or comma-separated `name=value` parameters whose
 * values may be quoted strings with backslash escapes and commas inside (`scope="repository:a:pull,push"`).
 * The parser is deliberately forgiving: a malformed header yields the challenges that could be read and
 * never throws, because the caller's next step (a clear "cannot authenticate" error) is better than a
 * parse error about a header the user never wrote.
 */
import { LadingError } from '../../errors.js';

export interface Challenge {
  /** Lowercased: 'basic' | 'bearer' | other. */
  scheme: string;
  /** Parameter names lowercased; values as sent (quotes and escapes removed). The first occurrence of a name wins. */
  params: Record<string, string>;
}

// RFC 9110 tchar.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
// token68 followed by optional whitespace and then the end or a comma: `Basic dXNlcjpwYXNz==`. What follows the
// comma is captured: if it is `name=`, the "token68" was really an empty parameter (`realm=,service=x`).
const TOKEN68 = /[A-Za-z0-9\-._~+/]+=*[ \t]*(?:$|,[ \t,]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*(=)?)?)/y;

/** Parses a WWW-Authenticate header into its challenges (several challenges, quoted strings with escapes, token68 ignored). */
export function parseWwwAuthenticate(header: string): Challenge[] {
  const s = header;
  const challenges: Challenge[] = [];
  let i = 0;

  const skipSpace = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const skipSpaceAndCommas = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    // s[i] is the opening quote. An unterminated string takes the rest of the header.
    i++;
    let out = '';
    while (i < s.length) {
      const c = s[i]!;
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\' && i + 1 < s.length) {
        out += s[i + 1];
        i += 2;
        continue;
      }
      out += c;
      i++;
    }
    return out;
  };
  const readValue = (): string => {
    skipSpace();
    if (s[i] === '"') return readQuoted();
    // A bare value should be a token, but servers send bare URLs too: take everything up to a comma or space.
    const start = i;
    while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
    return s.slice(start, i);
  };
  /** Skips junk up to the next comma (exclusive), so parsing can resume at a list boundary. */
  const skipToComma = (): void => {
    while (i < s.length && s[i] !== ',') {
      if (s[i] === '"') readQuoted();
      else i++;
    }
  };

  while (i < s.length) {
    skipSpaceAndCommas();
    if (i >= s.length) break;
    const scheme = readToken();
    if (scheme === '') {
      // Not a token where a scheme belongs: drop everything to the next comma.
      i++;
      skipToComma();
      continue;
    }
    skipSpace();
    if (s[i] === '=') {
      // A parameter with no scheme before it (`realm="x"` alone): read past it and carry on.
      i++;
      readValue();
      skipToComma();
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);

    TOKEN68.lastIndex = i;
    const token68 = s[i] === ',' ? null : TOKEN68.exec(s);
    if (token68 !== null && token68[1] === undefined) {
      // Skip the token68 itself; the comma and whatever follows it are read again as the next challenge.
      i += /^[^,]*/.exec(token68[0])![0].length;
      continue;
    }

    // Parameters, until a token that is not followed by '=' (the next challenge's scheme) or the end.
    for (;;) {
      const before = i;
      skipSpaceAndCommas();
      if (i >= s.length) break;
      const name = readToken();
      if (name === '') {
        // Junk inside the parameter list: skip to the next list element.
        i++;
        skipToComma();
        continue;
      }
      skipSpace();
      if (s[i] !== '=') {
        // The next challenge starts here.
        i = before;
        break;
      }
      i++;
      const value = readValue();
      const key = name.toLowerCase();
      // defineProperty, not assignment: a parameter named __proto__ must stay a plain own property.
      if (!Object.hasOwn(challenge.params, key)) {
        Object.defineProperty(challenge.params, key, { value, enumerable: true, writable: true, configurable: true });
      }
      skipSpace();
      if (i < s.length && s[i] !== ',') skipToComma();
    }
  }
  return challenges;
}

const ACTION_ORDER = ['pull', 'push', 'delete'] as const;

/**
 * The token scope for a repository: 'repository:ns/app:pull' or 'repository:ns/app:pull,push'. Actions are
 * de-duplicated and written in a fixed order (pull, push, delete) so equal requests produce equal scopes.
 */
export function repositoryScope(repository: string, actions: readonly ('pull' | 'push' | 'delete')[]): string {
  if (repository === '' || /[\s:,"]/.test(repository)) {
    throw new LadingError('INVALID_REFERENCE', `cannot build a token scope for repository "${repository}"`, { repository });
  }
  const wanted = ACTION_ORDER.filter((a) => actions.includes(a));
  if (wanted.length === 0) throw new LadingError('USAGE', `a token scope for ${repository} needs at least one action`, { repository });
  return `repository:${repository}:${wanted.join(',')}`;
}
