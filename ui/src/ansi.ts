// ANSI SGR colour codes in log lines (`\x1b[31m...`) turned into styled spans, so coloured
// output from a container reads as it did in the terminal. Other escape sequences are
// dropped. Builds DOM nodes, never HTML strings: a log line is untrusted input.

const BASIC = ['#000000', '#cd3131', '#0dbc79', '#e5e510', '#2472c8', '#bc3fbc', '#11a8cd', '#e5e5e5'];
const BRIGHT = ['#666666', '#f14c4c', '#23d18b', '#f5f543', '#3b8eea', '#d670d6', '#29b8db', '#ffffff'];

interface Style {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

// eslint-disable-next-line no-control-regex
const ESC = /\x1b\[([0-9;]*)([A-Za-z])/g;

export function hasAnsi(s: string): boolean {
  return s.includes('\x1b[');
}

export function stripAnsi(s: string): string {
  return s.replace(ESC, '');
}

function color256(n: number): string {
  if (n < 8) return BASIC[n];
  if (n < 16) return BRIGHT[n - 8];
  if (n < 232) {
    const i = n - 16;
    const c = (v: number) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function apply(style: Style, codes: number[]): Style {
  const s = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c === 0) for (const k of Object.keys(s)) delete s[k as keyof Style];
    else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) s.bold = s.dim = false;
    else if (c === 23) s.italic = false;
    else if (c === 24) s.underline = false;
    else if (c >= 30 && c <= 37) s.fg = BASIC[c - 30];
    else if (c === 39) delete s.fg;
    else if (c >= 40 && c <= 47) s.bg = BASIC[c - 40];
    else if (c === 49) delete s.bg;
    else if (c >= 90 && c <= 97) s.fg = BRIGHT[c - 90];
    else if (c >= 100 && c <= 107) s.bg = BRIGHT[c - 100];
    else if ((c === 38 || c === 48) && codes[i + 1] === 5 && codes[i + 2] !== undefined) {
      s[c === 38 ? 'fg' : 'bg'] = color256(codes[i + 2]);
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2 && codes[i + 4] !== undefined) {
      s[c === 38 ? 'fg' : 'bg'] = `rgb(${codes[i + 2]},${codes[i + 3]},${codes[i + 4]})`;
      i += 4;
    }
  }
  return s;
}

/** Appends `text` to `parent`, coloured as its escape codes say. */
export function renderAnsi(parent: HTMLElement, text: string): void {
  if (!hasAnsi(text)) {
    parent.appendChild(document.createTextNode(text));
    return;
  }
  let style: Style = {};
  let last = 0;
  const emit = (chunk: string) => {
    if (!chunk) return;
    if (!style.fg && !style.bg && !style.bold && !style.dim && !style.italic && !style.underline) {
      parent.appendChild(document.createTextNode(chunk));
      return;
    }
    const span = document.createElement('span');
    span.textContent = chunk;
    if (style.fg) span.style.color = style.fg;
    if (style.bg) span.style.backgroundColor = style.bg;
    if (style.bold) span.style.fontWeight = '600';
    if (style.dim) span.style.opacity = '0.7';
    if (style.italic) span.style.fontStyle = 'italic';
    if (style.underline) span.style.textDecoration = 'underline';
    parent.appendChild(span);
  };
  ESC.lastIndex = 0;
  for (let m = ESC.exec(text); m; m = ESC.exec(text)) {
    emit(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] === 'm') style = apply(style, m[1] === '' ? [0] : m[1].split(';').map(Number));
  }
  emit(text.slice(last));
}
