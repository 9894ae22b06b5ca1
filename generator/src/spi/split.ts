/**
 * Splits a YAML stream into documents without parsing it, so each document stands alone: one broken document
 * must not take the others down (js-yaml's loadAll fails the whole stream). A line that is `---` or `...` at
 * column 0, alone or followed by a space or tab, is a document boundary per the YAML spec, whatever precedes it
 * (block scalars end at column 0 and quoted scalars may not contain such lines). `%` directive lines before a
 * `---` belong to the next document. Index-based (no per-line array) so a 20 MiB replay stays cheap.
 */
export function* iterateYamlDocuments(text: string): Generator<string> {
  let docStart = 0; // start of the current document's text
  let pos = 0;
  const n = text.length;
  while (pos <= n) {
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = n;
    const c = text.charCodeAt(pos);
    if (c === 45 /* - */ || c === 46 /* . */) {
      const line = text.slice(pos, eol).replace(/\r$/, '');
      const isStart = line === '---' || line.startsWith('--- ') || line.startsWith('---\t');
      const isEnd = line === '...' || line.startsWith('... ') || line.startsWith('...\t');
      if (isStart || isEnd) {
        const prevEnd = directivesStart(text, docStart, pos);
        const doc = text.slice(docStart, prevEnd);
        if (hasContent(doc)) yield detach(doc);
        docStart = isStart ? prevEnd : eol + 1;
      }
    }
    pos = eol + 1;
  }
  const last = text.slice(docStart);
  if (hasContent(last)) yield detach(last);
}

/**
 * A real copy of a document's text. `slice` makes V8 "sliced strings" that keep the whole input alive; values
 * parsed out of them would pin a 20 MiB replay stream in memory for as long as the state lives.
 */
function detach(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

export function splitYamlStream(text: string): string[] {
  return [...iterateYamlDocuments(text)];
}

/** Where trailing `%` directive lines (which belong to the next document) start, scanning back from `end`. */
function directivesStart(text: string, from: number, end: number): number {
  let cut = end;
  while (cut > from) {
    const prevEol = text.lastIndexOf('\n', cut - 2);
    const lineStart = prevEol < from ? from : prevEol + 1;
    if (text.charCodeAt(lineStart) !== 37 /* % */) break;
    cut = lineStart;
  }
  return cut;
}

/** A document counts if it has a line other than blanks, comments, directives and a bare `---`. */
function hasContent(doc: string): boolean {
  for (const raw of doc.split('\n')) {
    const l = raw.trim();
    if (l !== '' && l !== '---' && !l.startsWith('#') && !raw.startsWith('%')) return true;
  }
  return false;
}
