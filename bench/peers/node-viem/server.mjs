// The reference Node signer of issue 16: what a keyward user could write in an afternoon
// instead of keyward. It is the bar keyward is measured against, so it is deliberately
// plain and fast: no token, no policy, no store, no audit.
//
// - node:https with client certificates required and checked against the same CA as
//   keyward (requestCert + rejectUnauthorized: a client without a certificate from that
//   CA never reaches the handler);
// - one secp256k1 key generated at start-up and held in memory (viem's
//   privateKeyToAccount, so the public key is derived once, not per request);
// - POST /sign with {"message": "..."} answers {"signature": "0x..."}: viem's
//   signMessage, EIP-191 personal_sign;
// - node:cluster with N workers sharing the listening socket (default: one per CPU).
//
// Configuration (environment, so the PEM paths never need quoting on a command line):
//   PEER_LISTEN   host:port to listen on (default 127.0.0.1:8443; loopback is the point)
//   PEER_CERT     server certificate chain (PEM)
//   PEER_KEY      server private key (PEM)
//   PEER_CA       CA the client certificates must chain to (PEM)
//   PEER_WORKERS  worker processes (default os.availableParallelism())
//
// The primary prints one line `listening <host:port> workers=<n>` once every worker
// listens; scripts/bench waits for it.
import cluster from 'node:cluster';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';

const listen = process.env.PEER_LISTEN || '127.0.0.1:8443';
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));
const workers = Number(process.env.PEER_WORKERS || os.availableParallelism());

if (cluster.isPrimary) {
  if (!Number.isInteger(workers) || workers < 1) {
    console.error(`PEER_WORKERS must be a positive integer, got ${process.env.PEER_WORKERS}`);
    process.exit(2);
  }
  let up = 0;
  let stopping = false;
  cluster.on('listening', () => {
    up += 1;
    if (up === workers) console.log(`listening ${host}:${port} workers=${workers}`);
  });
  cluster.on('exit', (w, code, signal) => {
    // a worker dying is a benchmark error, not something to paper over with a restart
    if (!stopping) {
      console.error(`worker ${w.process.pid} exited (code ${code}, signal ${signal})`);
      process.exit(1);
    }
  });
  const stop = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // one key for all workers, as a single-wallet service would have
  const privateKey = generatePrivateKey();
  for (let i = 0; i < workers; i++) cluster.fork({ PEER_PRIVATE_KEY: privateKey });
} else {
  const account = privateKeyToAccount(process.env.PEER_PRIVATE_KEY);
  delete process.env.PEER_PRIVATE_KEY;

  const reply = (res, status, obj) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  };

  const server = https.createServer(
    {
      cert: fs.readFileSync(process.env.PEER_CERT),
      key: fs.readFileSync(process.env.PEER_KEY),
      ca: fs.readFileSync(process.env.PEER_CA),
      requestCert: true,
      rejectUnauthorized: true,
      // the load generator keeps its connections busy; keep them open between runs' gaps
      keepAliveTimeout: 60_000,
    },
    (req, res) => {
      if (req.method !== 'POST' || req.url !== '/sign') {
        reply(res, 404, { error: 'not_found' });
        return;
      }
      const chunks = [];
      let size = 0;
      req.on('data', (c) => {
        size += c.length;
        if (size > 64 * 1024) {
          reply(res, 413, { error: 'body_too_large' });
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', async () => {
        let message;
        try {
          ({ message } = JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reply(res, 400, { error: 'invalid_json' });
          return;
        }
        if (typeof message !== 'string') {
          reply(res, 400, { error: 'invalid_message' });
          return;
        }
        try {
          reply(res, 200, { signature: await account.signMessage({ message }) });
        } catch {
          reply(res, 500, { error: 'sign_failed' });
        }
      });
    },
  );
  server.listen(port, host);
}
