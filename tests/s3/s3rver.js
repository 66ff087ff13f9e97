#!/usr/bin/env node
// Starts @20minutes/s3rver (4.x) for ringcap's S3 tests, on loopback only.
//
//   node --openssl-legacy-provider tests/s3/s3rver.js --directory DIR [--port N]
//        [--bucket NAME]... [--access-key ID --secret-key SECRET] [--request-log FILE]
//
// --openssl-legacy-provider: s3rver encrypts its ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 keeps in its legacy provider; without it a listing of more than 1000 keys
// fails with InternalError (the launcher warns on stderr).
//
// --port 0 (the default) lets the kernel pick a free port. Once the server listens it prints
// one line, "ready 127.0.0.1:<port>", on stdout; errors go to stderr with exit code 1.
// The server checks SigV4 signatures (no --allow-mismatched-signatures here): besides its
// built-in key pair S3RVER/S3RVER it accepts the pair given with --access-key/--secret-key.
// It serves path-style requests only (virtual-hosted buckets are off).
// --request-log FILE appends one line per request answered, "METHOD URL STATUS", so that a
// test sees what the server was asked (a multipart upload: POST ?uploads, PUT ?partNumber=N,
// POST ?uploadId=) without trusting the client's own account.
'use strict';

const path = require('path');

function usage(message) {
  process.stderr.write(`s3rver.js: ${message}\n`);
  process.stderr.write(
    'usage: s3rver.js --directory DIR [--port N] [--bucket NAME]... ' +
      '[--access-key ID --secret-key SECRET] [--request-log FILE]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    port: 0,
    directory: undefined,
    buckets: [],
    accessKey: undefined,
    secretKey: undefined,
    requestLog: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--port': {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) > 65535) usage(`--port: "${v}" is not a port number`);
        opts.port = Number(v);
        break;
      }
      case '--directory':
        opts.directory = path.resolve(value());
        break;
      case '--bucket':
        opts.buckets.push(value());
        break;
      case '--access-key':
        opts.accessKey = value();
        break;
      case '--secret-key':
        opts.secretKey = value();
        break;
      case '--request-log':
        opts.requestLog = path.resolve(value());
        break;
      default:
        usage(`unknown argument "${arg}"`);
    }
  }
  if (!opts.directory) usage('--directory is required');
  if ((opts.accessKey === undefined) !== (opts.secretKey === undefined)) {
    usage('--access-key and --secret-key go together');
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  try {
    require('crypto').createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch (err) {
    process.stderr.write(
      's3rver.js: warning: no DES cipher (start node with --openssl-legacy-provider): ' +
        'listings longer than one page will fail\n',
    );
  }
  const S3rver = require('@20minutes/s3rver');
  if (opts.accessKey !== undefined) {
    const AWSAccount = require('@20minutes/s3rver/lib/models/account');
    AWSAccount.DUMMY_ACCOUNT.createKeyPair(opts.accessKey, opts.secretKey);
  }
  require('fs').mkdirSync(opts.directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: opts.port,
    directory: opts.directory,
    silent: true,
    vhostBuckets: false,
    configureBuckets: opts.buckets.map((name) => ({ name, configs: [] })),
  });
  const { address, port } = await server.run();
  if (opts.requestLog !== undefined) {
    const fs = require('fs');
    server.httpServer.on('request', (req, res) => {
      res.on('finish', () => {
        fs.appendFileSync(opts.requestLog, `${req.method} ${req.url} ${res.statusCode}\n`);
      });
    });
  }
  // SIGTERM keeps Node's default (exit at once): the tests stop the server by PID.
  process.stdout.write(`ready ${address}:${port}\n`);
}

main().catch((err) => {
  process.stderr.write(`s3rver.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
