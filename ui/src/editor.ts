// The LogQL editor: CodeMirror 6 with Grafana's LogQL grammar for highlighting and a
// completion source that knows where the cursor is (inside a selector, after a `|`, in a
// `by (...)`) and asks the server for label names and values there.

import { autocompletion, closeBrackets, completionStatus, pickedCompletion, type Completion, type CompletionContext, type CompletionResult, startCompletion } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap, insertNewlineAndIndent } from '@codemirror/commands';
import { HighlightStyle, LRLanguage, LanguageSupport, bracketMatching, syntaxHighlighting } from '@codemirror/language';
import { EditorState, Prec } from '@codemirror/state';
import { EditorView, keymap, placeholder } from '@codemirror/view';
import { AGGREGATION_OPERATORS, RANGE_VEC_FUNCTIONS, parser } from '@grafana/lezer-logql';
import { styleTags, tags as t } from '@lezer/highlight';
import { cursorContext } from './cursor';

export interface Suggestions {
  labelNames(): Promise<string[]>;
  labelValues(name: string): Promise<string[]>;
  /** Field names the lines of the current selector carry (detected_fields), for `| field=`. */
  fieldNames(selector: string): Promise<string[]>;
}

const logql = LRLanguage.define({
  name: 'logql',
  parser: parser.configure({
    props: [
      styleTags({
        String: t.string,
        'Number Duration Bytes': t.number,
        LineComment: t.lineComment,
        'Identifier LabelName GroupingLabel': t.propertyName,
        'Json Logfmt Unpack Pattern Regexp Unwrap LabelFormat LineFormat Decolorize Drop Keep By Without Bool On Ignoring GroupLeft GroupRight Offset LabelReplace Vector Ip':
          t.keyword,
        'CountOverTime Rate RateCounter BytesOverTime BytesRate AvgOverTime SumOverTime MinOverTime MaxOverTime StddevOverTime StdvarOverTime QuantileOverTime FirstOverTime LastOverTime AbsentOverTime Sum Avg Count Max Min Stddev Stdvar Bottomk Topk Sort Sort_Desc Approx_Topk BytesConv DurationConv DurationSecondsConv':
          t.function(t.variableName),
        'Eq Neq Re Nre PipeExact PipeMatch PipePattern Npa Gtr Gte Lss Lte Eql Add Sub Mul Div Mod Pow And Or Unless': t.operator,
        Pipe: t.separator,
        '{ }': t.brace,
        '( )': t.paren,
        '[ ]': t.squareBracket,
      }),
    ],
  }),
  languageData: { closeBrackets: { brackets: ['(', '[', '{', '"', '`'] }, commentTokens: { line: '#' } },
});

const highlight = HighlightStyle.define([
  { tag: t.string, color: 'var(--hl-string)' },
  { tag: t.number, color: 'var(--hl-number)' },
  { tag: t.lineComment, color: 'var(--muted)', fontStyle: 'italic' },
  { tag: t.propertyName, color: 'var(--hl-label)' },
  { tag: t.keyword, color: 'var(--hl-keyword)', fontWeight: '600' },
  { tag: t.function(t.variableName), color: 'var(--hl-function)' },
  { tag: t.operator, color: 'var(--hl-operator)' },
  { tag: t.separator, color: 'var(--hl-operator)', fontWeight: '700' },
]);

interface Stage {
  label: string;
  apply?: string;
  detail: string;
}

const STAGES: Stage[] = [
  { label: 'json', detail: 'parse the line as JSON into labels' },
  { label: 'logfmt', detail: 'parse key=value pairs into labels' },
  { label: 'pattern', apply: 'pattern "<_> <field> <_>"', detail: 'extract fields with a pattern' },
  { label: 'regexp', apply: 'regexp "(?P<name>\\\\w+)"', detail: 'extract named groups' },
  { label: 'unpack', detail: 'unpack Promtail-packed JSON' },
  { label: 'line_format', apply: 'line_format "{{.msg}}"', detail: 'rewrite the line with a template' },
  { label: 'label_format', apply: 'label_format new=old', detail: 'rename or template labels' },
  { label: 'drop', apply: 'drop ', detail: 'remove labels' },
  { label: 'keep', apply: 'keep ', detail: 'keep only these labels' },
  { label: 'decolorize', detail: 'strip ANSI colour codes' },
  { label: 'unwrap', apply: 'unwrap ', detail: 'use a label as the sample value' },
];

const LINE_FILTERS: Completion[] = [
  { label: '|= "…"', apply: '|= ""', detail: 'line contains', type: 'keyword' },
  { label: '!= "…"', apply: '!= ""', detail: 'line does not contain', type: 'keyword' },
  { label: '|~ "…"', apply: '|~ ""', detail: 'line matches regex', type: 'keyword' },
  { label: '!~ "…"', apply: '!~ ""', detail: 'line does not match regex', type: 'keyword' },
];

/** `name=""` with the cursor between the quotes, where value completion opens. */
function matcherApply(name: string) {
  return (view: EditorView, c: Completion, from: number, to: number) => {
    const insert = `${name}=""`;
    view.dispatch({ changes: { from, to, insert }, selection: { anchor: from + name.length + 2 }, annotations: pickedCompletion.of(c) });
  };
}

/** The value, then past its closing quote, ready for `,` or `}`. */
function valueApply(escaped: string) {
  return (view: EditorView, c: Completion, from: number, to: number) => {
    const closing = view.state.sliceDoc(to, to + 1) === '"';
    view.dispatch({ changes: { from, to, insert: closing ? escaped : `${escaped}"` }, selection: { anchor: from + escaped.length + 1 }, annotations: pickedCompletion.of(c) });
  };
}

function completer(s: Suggestions) {
  return async (ctx: CompletionContext): Promise<CompletionResult | null> => {
    const before = ctx.state.sliceDoc(0, ctx.pos);
    const where = cursorContext(before);
    if (!where) return null;
    const typed = before.slice(where.from);
    if (!ctx.explicit && typed === '' && where.kind === 'function' && before.trim() !== '') return null;
    try {
      switch (where.kind) {
        case 'labelName':
        case 'grouping': {
          const names = await s.labelNames();
          return { from: where.from, options: names.map((n) => ({ label: n, type: 'property', apply: where.kind === 'labelName' ? matcherApply(n) : n })), validFor: /^\w*$/ };
        }
        case 'labelValue': {
          const values = await s.labelValues(where.name);
          return {
            from: where.from,
            options: values.map((v) => ({ label: v, type: 'constant', apply: valueApply(v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')) })),
            validFor: /^[^"]*$/,
          };
        }
        case 'stage': {
          const selector = /\{[^}]*\}/.exec(before)?.[0];
          const fields = selector ? await s.fieldNames(selector).catch(() => []) : [];
          const opts: Completion[] = [
            ...STAGES.map((x) => ({ label: x.label, apply: x.apply ?? x.label, detail: x.detail, type: 'keyword', boost: x.label === 'json' || x.label === 'logfmt' ? 5 : 2 })),
            ...(typed === '' && /\|$/.test(before) ? LINE_FILTERS.filter((f) => f.label.startsWith('|')).map((f) => ({ ...f, apply: (f.apply as string).slice(1), boost: 4 })) : []),
            ...fields.map((f) => ({ label: f, apply: `${f}=""`, detail: 'field filter', type: 'property', boost: 1 })),
          ];
          return { from: where.from, options: opts, validFor: /^\w*$/ };
        }
        case 'afterSelector':
          return { from: where.from, options: [...LINE_FILTERS, { label: '| json', apply: '| json', detail: 'parse JSON', type: 'keyword' }, { label: '| logfmt', apply: '| logfmt', detail: 'parse logfmt', type: 'keyword' }] };
        case 'function': {
          const fns = [...RANGE_VEC_FUNCTIONS, ...AGGREGATION_OPERATORS].map((f) => ({
            label: f.label,
            apply: f.insertText ?? f.label,
            detail: f.detail,
            info: f.documentation,
            type: 'function',
          }));
          return { from: where.from, options: [{ label: '{', apply: '{', detail: 'stream selector', type: 'keyword', boost: 3 }, ...fns], validFor: /^\w*$/ };
        }
      }
    } catch {
      return null;
    }
  };
}

/** Opens the completion list again after a `"` or `=` that starts a new context. */
const reopen = EditorView.updateListener.of((u) => {
  if (!u.docChanged) return;
  const pos = u.state.selection.main.head;
  const prev = u.state.sliceDoc(Math.max(0, pos - 2), pos);
  if (/(="|\{|, ?|\| ?)$/.test(prev) && completionStatus(u.state) === null) {
    queueMicrotask(() => startCompletion(u.view));
  }
});

export interface Editor {
  view: EditorView;
  get(): string;
  set(q: string): void;
  focus(): void;
}

export function createEditor(parent: HTMLElement, initial: string, s: Suggestions, onRun: () => void): Editor {
  const run = () => {
    onRun();
    return true;
  };
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: initial,
      extensions: [
        history(),
        closeBrackets(),
        bracketMatching(),
        new LanguageSupport(logql, [logql.data.of({})]),
        syntaxHighlighting(highlight),
        // Enter accepts a completion at once (no interaction delay): Enter also runs the
        // query, and a delayed accept would run a half-typed one instead.
        autocompletion({ override: [completer(s)], activateOnTyping: true, icons: false, interactionDelay: 0 }),
        reopen,
        placeholder('{service_name=~".+"} — type { for labels, | for filters and parsers; Enter runs'),
        Prec.high(
          keymap.of([
            { key: 'Mod-Enter', run },
            { key: 'Shift-Enter', run: insertNewlineAndIndent },
            // While completions are being fetched, Enter waits for them rather than running.
            { key: 'Enter', run: (v) => (completionStatus(v.state) === 'active' ? false : completionStatus(v.state) === 'pending' ? true : run()) },
          ]),
        ),
        keymap.of([...defaultKeymap, ...historyKeymap]),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': 'LogQL query', 'data-testid': 'query-editor' }),
      ],
    }),
  });
  return {
    view,
    get: () => view.state.doc.toString(),
    set: (q: string) => {
      if (q !== view.state.doc.toString()) view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: q } });
    },
    focus: () => view.focus(),
  };
}
