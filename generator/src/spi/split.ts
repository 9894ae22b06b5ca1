/**
 * Splits a YAML stream into documents without parsing it, so each document stands alone: one broken document
 * must not take the others down (js-yaml's loadAll fails the whole stream). A line starting with `---` (followed
 * by space or end of line) or exactly `...` at column 0 is a document boundary per the YAML spec, whatever
 * precedes it (block scalars end at column 0 and quoted scalars may not contain such lines).
 */
export function splitYamlStream(text: string): string[] {
  const docs: string[] = [];
  const lines = text.split(/\r?\n/);
  let cur: string[] = [];
  let pendingDirectives: string[] = [];
  let started = false; // saw explicit "---" or content for the current document
  const flush = () => {
    if (cur.some((l) => l.trim() !== '' && l !== '---' && !l.startsWith('#') && !l.startsWith('%'))) docs.push(cur.join('\n') + '\n');
    cur = [];
    started = false;
  };
  for (const line of lines) {
    if (line === '---' || line.startsWith('--- ') || line.startsWith('---\t')) {
      flush();
      cur = [...pendingDirectives, line];
      pendingDirectives = [];
      started = true;
    } else if (line === '...' || line.startsWith('... ')) {
      flush();
    } else if (!started && line.startsWith('%')) {
      // directives (%YAML 1.1) belong to the next document
      pendingDirectives.push(line);
    } else {
      cur.push(line);
      if (line.trim() !== '') started = true;
    }
  }
  flush();
  return docs;
}
