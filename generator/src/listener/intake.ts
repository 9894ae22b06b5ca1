// The listener's IntakePort over the core's StateStore: each message body parsed on its own (a broken one is
// rejected alone), the whole batch applied with ONE applyEvents call (one lock, one vars write). Messages whose
// documents fail to parse are applied on their own first, so the rejects log records their STOMP message-id.
import type { StateStore, DocResult } from '../vars/store.js';
import { parseSpiStream } from '../spi/parse.js';
import { redactUnparsed } from '../spi/redact.js';
import { MESSAGE_TLS_BUDGET } from '../tls/pem.js';
import type { ParsedDoc } from '../spi/types.js';
import type { Delivery } from './stomp.js';
import type { BatchOutcome, DocOutcome, IntakePort, MessageOutcome } from './batcher.js';
import type { SeenIds } from './seen.js';

/** Documents one STOMP message may hold (the broker sends one): more, and the message is rejected whole, unparsed. */
export const MAX_DOCUMENTS_PER_MESSAGE = 1000;

/** The store's results by document index (one pass: a find per document was quadratic in the batch). */
function resultsByIndex(results: readonly DocResult[], n: number): (DocResult | undefined)[] {
  const out: (DocResult | undefined)[] = new Array(n);
  for (const r of results) if (Number.isInteger(r.index) && r.index >= 0 && r.index < n && out[r.index] === undefined) out[r.index] = r;
  return out;
}

export function storeIntake(store: StateStore, maxBodyBytes: number, seen?: SeenIds): IntakePort {
  // documents parsed when the message was queued (prepare), taken by the apply; a WeakMap, so a delivery dropped
  // unapplied (stop, connection gone) takes its documents with it
  const prepared = new WeakMap<Delivery, ParsedDoc[]>();
  const parse = (d: Delivery): ParsedDoc[] => {
    // a body the STOMP intake cut (over the cap) is judged by its size as received
    const size = d.bodyBytes ?? Buffer.byteLength(d.body, 'utf8');
    if (size > maxBodyBytes) {
      return [{ index: 0, ok: false, rejection: { code: 'ERR_SPI_TOO_LARGE', reason: `message body is ${size} bytes, over the ${maxBodyBytes}-byte cap (max_body_bytes)` }, logged: redactUnparsed(d.body.slice(0, 4096)) }];
    }
    const docs = parseSpiStream(d.body, { ...store.parseOptions, maxBodyBytes, maxDocuments: MAX_DOCUMENTS_PER_MESSAGE, tlsBudgetPerText: MESSAGE_TLS_BUDGET });
    return docs.length ? docs : [{ index: 0, ok: false, rejection: { code: 'ERR_SPI_INVALID', reason: 'empty message' }, logged: '' }];
  };
  return {
    prepare(d: Delivery): void {
      // a redelivery already applied is not parsed (the apply acks it unread)
      if (!seen?.has(d.messageId)) prepared.set(d, parse(d));
    },
    async apply(all: readonly Delivery[]): Promise<BatchOutcome> {
      // redeliveries of messages already applied (crash between the write and the ack): ack, do not re-apply
      const batch: Delivery[] = [];
      const skipped = new Set<Delivery>();
      // and a second copy of a message within the batch (a delivery of a dead connection still queued, then its
      // redelivery on the new one): the first copy is applied in its place, a later one would re-apply it after the
      // messages that followed it (an add after its remove)
      const inBatch = new Set<string>();
      for (const d of all) {
        if (seen?.has(d.messageId) || inBatch.has(d.messageId)) skipped.add(d);
        else { inBatch.add(d.messageId); batch.push(d); }
      }
      const res = await applyBatch(batch);
      await seen?.add(batch.map((d) => d.messageId));
      // outcomes in delivery order (applyBatch returns one per message of `batch`, in order)
      let next = 0;
      const messages = all.map((d): MessageOutcome => (skipped.has(d)
        ? { messageId: d.messageId, docs: [{ action: 'duplicate', app: '', result: 'unchanged' }] }
        : res.messages[next++] ?? { messageId: d.messageId, docs: [] }));
      return { messages, changedApps: res.changedApps };
    },
  };

  async function applyBatch(batch: readonly Delivery[]): Promise<BatchOutcome> {
    {
      // parsed, validated and redacted here, before the store takes its lock
      const perMessage: ParsedDoc[][] = batch.map((d) => {
        const docs = prepared.get(d);
        if (!docs) return parse(d);
        prepared.delete(d);
        return docs;
      });
      const outcomes: MessageOutcome[] = batch.map((d) => ({ messageId: d.messageId, docs: [] }));
      const docAction = (p: ParsedDoc): string => (p.ok ? p.event.action : p.action ?? 'unknown');
      const toOutcome = (p: ParsedDoc, r: DocResult | undefined): DocOutcome => {
        if (!r) return { action: docAction(p), app: '', result: 'rejected', code: 'ERR_INTERNAL', reason: 'no result' };
        if (r.status === 'rejected') return { action: r.action ?? docAction(p), app: r.app ?? '', result: 'rejected', code: r.code, reason: r.reason };
        return { action: docAction(p), app: r.app, result: r.status };
      };
      // 1. parse failures: alone, with the message-id, so the rejects log names it (nothing is written)
      const good: { msg: number; doc: ParsedDoc }[] = [];
      for (let m = 0; m < batch.length; m++) {
        const docs = perMessage[m] as ParsedDoc[];
        const bad = docs.filter((p) => !p.ok);
        if (bad.length) {
          const res = await store.applyEvents(bad.map((p, i) => ({ ...p, index: i })), { source: 'stomp', messageId: (batch[m] as Delivery).messageId });
          const byIndex = resultsByIndex(res.results, bad.length);
          bad.forEach((p, i) => (outcomes[m] as MessageOutcome).docs.push(toOutcome(p, byIndex[i])));
        }
        for (const p of docs) if (p.ok) good.push({ msg: m, doc: p });
      }
      // 2. the valid documents of the whole batch in one apply
      let changedApps: string[] = [];
      if (good.length) {
        const only = batch.length === 1 ? { messageId: (batch[0] as Delivery).messageId } : {};
        const res = await store.applyEvents(good.map((g, i) => ({ ...g.doc, index: i })), { source: 'stomp', ...only });
        changedApps = res.changedApps;
        const byIndex = resultsByIndex(res.results, good.length);
        good.forEach((g, i) => (outcomes[g.msg] as MessageOutcome).docs.push(toOutcome(g.doc, byIndex[i])));
      }
      return { messages: outcomes, changedApps };
    }
  }
}
