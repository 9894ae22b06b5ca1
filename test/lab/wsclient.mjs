#!/usr/bin/env node
// A websocket client for the lab (run it inside the client netns):
//   ip netns exec rpclient node test/lab/wsclient.mjs --url ws://shop-acme.apps.example.com/chat --connect 198.51.100.201
// Prints `open`, then each received message on its own line, and `closed <code>` (or `error <msg>`) at the end.
// Each line read on stdin is sent as a message; end of stdin closes the socket.
import WebSocket from 'ws';
import fs from 'node:fs';
import readline from 'node:readline';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
};
const url = new URL(opt('url', 'ws://localhost/'));
const connect = opt('connect', url.hostname);
const ca = opt('ca', '');
const secure = url.protocol === 'wss:';
const port = url.port || (secure ? '443' : '80');
const target = `${url.protocol}//${connect}:${port}${url.pathname}${url.search}`;
const ws = new WebSocket(target, {
  headers: { host: url.host },
  servername: secure ? url.hostname : undefined,
  ca: ca ? fs.readFileSync(ca) : undefined,
  handshakeTimeout: Number(opt('timeout-ms', '3000')),
});
ws.on('open', () => {
  console.log('open');
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => ws.send(line));
  rl.on('close', () => ws.close(1000));
});
ws.on('message', (data) => console.log(data.toString()));
ws.on('close', (code) => { console.log(`closed ${code}`); process.exit(0); });
ws.on('error', (e) => { console.log(`error ${e.message}`); process.exit(1); });
