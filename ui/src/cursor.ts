// Where the cursor is in a LogQL query, for completion: inside a selector (label name or
// value), after a pipe (a stage), in a grouping, or where a function may start. Read from
// the text before the cursor, strings skipped; unit-tested in tests/unit.test.mjs.

/** Where the cursor is, read from the text before it. Strings are skipped so a `{` or `|`
 *  inside a quoted filter does not confuse it. */
export function cursorContext(before: string):
  | { kind: 'labelName'; from: number }
  | { kind: 'labelValue'; name: string; from: number }
  | { kind: 'stage'; from: number }
  | { kind: 'grouping'; from: number }
  | { kind: 'function'; from: number }
  | { kind: 'afterSelector'; from: number }
  | null {
  let depthBrace = 0;
  let inString: string | null = null;
  let braceStart = -1;
  let stringStart = -1;
  for (let i = 0; i < before.length; i++) {
    const c = before[i];
    if (inString) {
      if (c === '\\' && inString === '"') i++;
      else if (c === inString) inString = null;
      continue;
    }
    if (c === '"' || c === '`') {
      inString = c;
      stringStart = i;
    } else if (c === '{') {
      depthBrace++;
      braceStart = i;
    } else if (c === '}') depthBrace = Math.max(0, depthBrace - 1);
  }
  if (inString) {
    if (depthBrace > 0) {
      const m = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*$/.exec(before.slice(braceStart + 1, stringStart));
      if (m) return { kind: 'labelValue', name: m[1], from: stringStart + 1 };
    }
    return null;
  }
  const word = /[A-Za-z_][A-Za-z0-9_]*$/.exec(before);
  const from = word ? before.length - word[0].length : before.length;
  const head = before.slice(0, from);
  if (depthBrace > 0) {
    if (/[{,]\s*$/.test(head)) return { kind: 'labelName', from };
    return null;
  }
  if (/\}\s+$/.test(head) && !word) return { kind: 'afterSelector', from };
  if (/\|\s*$/.test(head) && !/[|!]=\s*$/.test(head)) return { kind: 'stage', from };
  if (/\b(by|without|on|ignoring|group_left|group_right)\s*\(([A-Za-z0-9_]+\s*,\s*)*$/.test(head)) return { kind: 'grouping', from };
  if (/(^|[(\s])$/.test(head) && !/[}\]]\s*$/.test(head)) return { kind: 'function', from };
  return null;
}

