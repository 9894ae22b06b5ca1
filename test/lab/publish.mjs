#!/usr/bin/env node
// Publishes a stream of Routing SPI documents to ActiveMQ exactly as OpenShift's routing plug-in does: one
// STOMP SEND per document (a Psych dump starting with "---"), to /topic/routinginfo, as user routinginfo,
// WITHOUT a persistent header.
//   node test/lab/publish.mjs [--host 198.51.100.1] [--port 61613] [--destination /topic/routinginfo] FILE|-
// Login/passcode: --login/--passcode, else PAAS_RPROXY_STOMP_LOGIN/_PASSCODE, else routinginfo/routinginfopasswd.
// Prints the number of messages sent.
import fs from 'node:fs';
import stompit from 'stompit';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0 || args[i + 1] === undefined) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const host = opt('host', '198.51.100.1');
const port = Number(opt('port', '61613'));
const destination = opt('destination', '/topic/routinginfo');
const login = opt('login', process.env.PAAS_RPROXY_STOMP_LOGIN ?? 'routinginfo');
const passcode = opt('passcode', process.env.PAAS_RPROXY_STOMP_PASSCODE ?? 'routinginfopasswd');
const file = args[0] ?? '-';
const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');

// split a multi-document stream at document starts ("---" lines), keeping each document's "---"
const docs = [];
let cur = null;
for (const line of text.split('\n')) {
  if (/^---(\s|$)/.test(line)) {
    if (cur !== null && cur.trim() !== '---') docs.push(cur);
    cur = line + '\n';
  } else if (cur !== null) {
    cur += line + '\n';
  }
}
if (cur !== null && cur.trim() !== '---') docs.push(cur);

stompit.connect({ host, port, connectHeaders: { host: '/', login, passcode, 'heart-beat': '0,0' } }, (err, client) => {
  if (err) {
    console.error(`publish: cannot connect to ${host}:${port}: ${err.message}`);
    process.exit(1);
  }
  client.on('error', (e) => {
    console.error(`publish: ${e.message}`);
    process.exit(1);
  });
  for (const body of docs) {
    const frame = client.send({ destination, 'content-type': 'text/plain' });
    frame.write(body);
    frame.end();
  }
  // DISCONNECT with a receipt: every SEND before it has reached the broker
  client.disconnect((e) => {
    if (e) {
      console.error(`publish: ${e.message}`);
      process.exit(1);
    }
    console.log(`published ${docs.length} message(s) to ${destination} on ${host}:${port}`);
  });
});
