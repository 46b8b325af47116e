#!/usr/bin/env node
// Opens N connections to 127.0.0.1:PORT and on each sends the first SIZE
// bytes of a request head that never ends, the costliest thing a client can
// make the server hold (the head is buffered until it is complete). Prints
// "ready N" once every byte is written, then holds the connections until
// SIGTERM or until HOLD seconds (default 8: below the server's 10 s header
// timeout) have passed. tests/k8s.sh reads the server's RSS meanwhile.
//
//   node holdconns.js PORT N SIZE [HOLD]
'use strict';

const net = require('net');

const [port, count, size, hold = 8] = process.argv.slice(2).map(Number);
if (!(port > 0) || !(count > 0) || !(size > 0)) {
  console.error('usage: holdconns.js PORT N SIZE [HOLD]');
  process.exit(2);
}

const start = 'GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ';
const head = Buffer.from(start + 'p'.repeat(Math.max(0, size - start.length))).subarray(0, size);
const sockets = [];
let written = 0;
let failed = 0;

function finish(code) {
  for (const s of sockets) s.destroy();
  process.exit(code);
}

function settled() {
  if (written + failed < count) return;
  console.log(failed ? `failed ${failed} of ${count}` : `ready ${count}`);
  if (failed) finish(1);
  setTimeout(() => finish(0), hold * 1000);
}

for (let i = 0; i < count; i++) {
  let counted = false;
  const s = net.connect({ host: '127.0.0.1', port }, () => {
    s.write(head, (err) => {
      if (counted) return;
      counted = true;
      if (err) failed++; else written++;
      settled();
    });
  });
  s.on('error', () => {
    if (counted) return;
    counted = true;
    failed++;
    settled();
  });
  sockets.push(s);
}

process.on('SIGTERM', () => finish(0));
