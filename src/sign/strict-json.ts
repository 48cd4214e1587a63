/**
 * JSON.parse that also refuses duplicate object keys. A signature payload is read by several programs
 * (Lading, containers/image, the cluster-version-operator); if `{"docker-manifest-digest": A,
 * "docker-manifest-digest": B}` were accepted, each could act on a different digest. containers/image
 * refuses duplicates for the same reason. JSON.parse keeps the last value silently and its reviver never
 * sees the others, so the key check is a small scan of its own; the values still come from JSON.parse.
 */

/** Parses `text` as JSON; throws SyntaxError on malformed input and on any object with a repeated key. */
export function parseJsonNoDuplicates(text: string): unknown {
  const value: unknown = JSON.parse(text); // syntax errors first, with the engine's message
  checkDuplicateKeys(text);
  return value;
}

/** Walks already-valid JSON text, tracking the keys of each open object. */
function checkDuplicateKeys(text: string): void {
  // One entry per open container: a key set for objects, undefined for arrays.
  const stack: (Set<string> | undefined)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(undefined);
      expectKey = false;
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] !== undefined;
    } else if (c === '"') {
      const end = stringEnd(text, i);
      if (expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        const keys = stack[stack.length - 1];
        if (keys?.has(key)) throw new SyntaxError(`duplicate key ${JSON.stringify(key)}`);
        keys?.add(key);
        expectKey = false;
      }
      i = end;
    }
  }
}

/** Index of the closing quote of the string starting at `start` (the text is known to be valid JSON). */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length;
}
