#!/usr/bin/env python3
"""A scripted S3-compatible bucket server for ringcapd's fault tests (loopback, one process).

  scripted_bucket.py --directory DIR [--port N] [--capture-put MODE]

Prints "ready HOST:PORT" once it listens. Every request is appended to DIR/requests.log as
"METHOD PATH". A PUT is stored in DIR/objects/<path with '/' as '_'> and answered 200 with the
MD5 of the body as its ETag (what S3 does), except a PUT of a capture (a key holding "pcap_"),
which is answered as MODE says:
  ok           as any other PUT
  bad-utf8     403 AccessDenied whose <Message> holds bytes that are not UTF-8 (a lone 0xff,
               a Latin-1 e-acute, and a 3-byte character cut after its second byte at the end)
  hang         no answer: the connection is held open (up to 600 s), as a stuck server does
Signatures are not checked. Bounded: it serves until it is killed, and a held connection is let
go after 600 s.
"""
import argparse
import hashlib
import http.server
import os
import socketserver
import sys
import threading

BAD_MESSAGE = (b"Acc\xe8s refus\xe9 \xff\xfe by policy \xe2\x82\xac ok, cut here: \xe2\x82")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: requests.log has what the tests need
        pass

    def record(self):
        with open(os.path.join(self.server.directory, "requests.log"), "a") as f:
            f.write(f"{self.command} {self.path}\n")

    def body(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_PUT(self):
        self.record()
        data = self.body()
        path = self.path.split("?", 1)[0]
        if "pcap_" in path and self.server.mode == "bad-utf8":
            xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                   b"<Message>" + BAD_MESSAGE + b"</Message><RequestId>1</RequestId></Error>")
            self.answer(403, xml, [("Content-Type", "application/xml")])
            return
        if "pcap_" in path and self.server.mode == "hang":
            self.server.released.wait(600)
            self.close_connection = True
            return
        name = path.strip("/").replace("/", "_")
        with open(os.path.join(self.server.directory, "objects", name), "wb") as f:
            f.write(data)
        self.answer(200, b"", [("ETag", '"' + hashlib.md5(data).hexdigest() + '"')])

    def do_GET(self):
        self.record()
        self.answer(404, b"<Error><Code>NoSuchKey</Code><Message>none</Message></Error>")

    do_HEAD = do_GET

    def do_POST(self):
        self.record()
        self.body()
        self.answer(501, b"<Error><Code>NotImplemented</Code><Message>no</Message></Error>")

    do_DELETE = do_POST


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--directory", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--capture-put", choices=["ok", "bad-utf8", "hang"], default="ok")
    a = p.parse_args()
    os.makedirs(os.path.join(a.directory, "objects"), exist_ok=True)
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.directory = a.directory
    srv.mode = a.capture_put
    srv.released = threading.Event()
    print(f"ready 127.0.0.1:{srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
