// WebSocket peers for the e2e tests, on node's "ws" (Debian: node-ws).
//
//   ws.js server PORT_FILE
//     An echo server on 127.0.0.1 (a free port, written to PORT_FILE): every message goes back
//     as it came (text or binary). A request for /reject is answered 403.
//   ws.js client URL [--ca FILE] [--connections N] [--big BYTES]
//     N connections at once, each sending a small text message, a BYTES binary message and a
//     message in three fragments, checking every echo. Prints a JSON summary; exit 0 when all
//     echoes matched.
//   ws.js hold URL READY_FILE GO_FILE
//     One connection: an echo, then READY_FILE is written; once GO_FILE exists, another echo;
//     then it waits for the close. Prints a JSON summary (echoes, close code, ms from GO to close).
//   ws.js idle URL
//     Connects and sends nothing; prints the close code and how long the connection lived.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const WebSocket = require('ws');

const [mode, ...args] = process.argv.slice(2);
const option = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const digest = (b) => crypto.createHash('sha256').update(b).digest('hex');

function server(portFile) {
  const wss = new WebSocket.Server({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (info, done) => done(info.req.url !== '/reject', 403),
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, {binary: isBinary}));
  });
  wss.on('listening', () => fs.writeFileSync(portFile, String(wss.address().port)));
}

function connect(url) {
  const opts = {};
  const ca = option('--ca');
  if (ca) {
    opts.ca = fs.readFileSync(ca);
  }
  return new WebSocket(url, opts);
}

// Sends `parts` as one message (several fragments when more than one); resolves with the echo.
function echo(ws, parts, binary) {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(Buffer.from(data)));
    ws.once('close', (code) => reject(new Error('closed ' + code)));
    parts.forEach((p, i) => ws.send(p, {binary, fin: i === parts.length - 1}));
  });
}

async function exchange(url, big) {
  const ws = connect(url);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const results = [];
  const small = Buffer.from('hello through lb');
  results.push(digest(await echo(ws, [small], false)) === digest(small));
  const large = crypto.randomBytes(big);
  results.push(digest(await echo(ws, [large], true)) === digest(large));
  const frags = [Buffer.from('part one, '), Buffer.from('part two, '), Buffer.from('part three')];
  results.push(digest(await echo(ws, frags, false)) === digest(Buffer.concat(frags)));
  ws.close(1000);
  return results.every(Boolean);
}

async function client(url) {
  const n = Number(option('--connections', '1'));
  const big = Number(option('--big', String(1 << 20)));
  const all = await Promise.allSettled(Array.from({length: n}, () => exchange(url, big)));
  const ok = all.filter((r) => r.status === 'fulfilled' && r.value).length;
  const errors = all.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
  console.log(JSON.stringify({connections: n, ok, errors: errors.slice(0, 3)}));
  process.exit(ok === n ? 0 : 1);
}

async function hold(url, readyFile, goFile) {
  const ws = connect(url);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echoes = [];
  echoes.push((await echo(ws, [Buffer.from('before')], false)).toString());
  const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  fs.writeFileSync(readyFile, 'ready');
  while (!fs.existsSync(goFile)) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const go = Date.now();
  echoes.push((await echo(ws, [Buffer.from('after')], false)).toString());
  const code = await closed;
  console.log(JSON.stringify({echoes, close: code, after_go_ms: Date.now() - go}));
}

async function idle(url) {
  const ws = connect(url);
  const start = Date.now();
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const code = await new Promise((resolve) => ws.once('close', (c) => resolve(c)));
  console.log(JSON.stringify({close: code, lived_ms: Date.now() - start}));
}

const run = {server, client, hold, idle}[mode];
if (!run) {
  console.error('usage: ws.js server|client|hold|idle ...');
  process.exit(2);
}
Promise.resolve(run(...args.filter((a, i) => !a.startsWith('--') && !(args[i - 1] || '').startsWith('--'))))
    .catch((e) => {
      console.log(JSON.stringify({error: String(e)}));
      process.exit(1);
    });
