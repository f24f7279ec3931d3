// JSON read the way Loki's `| json` reads it, without JavaScript numbers: a 64-bit id
// like 12345678901234567890 keeps every digit (JSON.parse would round it), so "filter for"
// writes the value the server will compare against. Also a re-indenter that changes only
// whitespace, for showing a JSON line.

/** Flattened fields of a JSON object line: nested keys joined with `_`, arrays and nulls
 *  skipped (as Loki does), scalars as their text (strings unescaped). Null when the line
 *  is not a JSON object. */
export function jsonFields(text: string): [string, string][] | null {
  const p = new Reader(text);
  try {
    p.ws();
    if (p.peek() !== '{') return null;
    const out: [string, string][] = [];
    p.object('', out);
    p.ws();
    return p.done() ? out : null;
  } catch {
    return null;
  }
}

class Reader {
  i = 0;
  constructor(readonly s: string) {}

  peek(): string {
    return this.s[this.i];
  }

  done(): boolean {
    return this.i >= this.s.length;
  }

  ws(): void {
    while (this.i < this.s.length && ' \t\n\r'.includes(this.s[this.i])) this.i++;
  }

  expect(c: string): void {
    if (this.s[this.i] !== c) throw new Error(`expected ${c} at ${this.i}`);
    this.i++;
  }

  object(prefix: string, out: [string, string][]): void {
    this.expect('{');
    this.ws();
    if (this.peek() === '}') {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      const key = this.string().replace(/[^A-Za-z0-9_]/g, '_');
      this.ws();
      this.expect(':');
      this.ws();
      this.value(prefix ? `${prefix}_${key}` : key, out);
      this.ws();
      if (this.peek() === ',') {
        this.i++;
        continue;
      }
      this.expect('}');
      return;
    }
  }

  /** A value: objects recurse, arrays are read and dropped, scalars are kept. */
  value(name: string, out: [string, string][] | null): void {
    const c = this.peek();
    if (c === '{') {
      if (out) this.object(name, out);
      else this.object('', []);
    } else if (c === '[') {
      this.i++;
      this.ws();
      if (this.peek() === ']') {
        this.i++;
        return;
      }
      for (;;) {
        this.ws();
        this.value('', null);
        this.ws();
        if (this.peek() === ',') {
          this.i++;
          continue;
        }
        this.expect(']');
        return;
      }
    } else if (c === '"') {
      const v = this.string();
      out?.push([name, v]);
    } else {
      const m = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(this.s.slice(this.i, this.i + 64));
      if (!m) throw new Error(`bad value at ${this.i}`);
      this.i += m[0].length;
      if (m[0] !== 'null') out?.push([name, m[0]]);
    }
  }

  string(): string {
    this.expect('"');
    let v = '';
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) throw new Error('unterminated string');
      if (c === '"') return v;
      if (c !== '\\') {
        v += c;
        continue;
      }
      const e = this.s[this.i++];
      if (e === 'u') {
        v += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 4), 16));
        this.i += 4;
      } else v += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[e] ?? e;
    }
  }
}

/** `text` indented two spaces per level; strings and numbers untouched. */
export function indentJson(text: string): string {
  let out = '';
  let depth = 0;
  let inString = false;
  const nl = () => `\n${'  '.repeat(depth)}`;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\n' || c === '\t' || c === '\r') continue;
    if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      let j = i + 1;
      while (j < text.length && ' \n\t\r'.includes(text[j])) j++;
      if (text[j] === close) {
        out += c + close;
        i = j;
      } else {
        depth++;
        out += c + nl();
      }
    } else if (c === '}' || c === ']') {
      depth = Math.max(0, depth - 1);
      out += nl() + c;
    } else if (c === ',') out += `,${nl()}`;
    else if (c === ':') out += ': ';
    else out += c;
  }
  return out;
}
