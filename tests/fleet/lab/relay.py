#!/usr/bin/python3
"""A TCP <-> Unix-socket relay for the three-host lab (tests/fleet/lab/lib.sh).

Each host of the lab is a network namespace with a loopback of its own; the S3-compatible
server listens on the root namespace's loopback. A Unix socket is a file, reachable from every
network namespace, so the lab joins them with two relays:

  relay.py tcp PORT SOCKET     in a host's namespace: listens on 127.0.0.1:PORT, relays each
                               connection to the Unix socket SOCKET
  relay.py unix SOCKET PORT    in the root namespace: listens on SOCKET, relays each
                               connection to 127.0.0.1:PORT

The same port in every namespace keeps the endpoint's URL (and so the SigV4 Host header) one.
It prints "ready" on stdout once it listens, and relays until it is ended (SIGTERM).
"""
import os
import signal
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(conn, connect):
    try:
        peer = connect()
    except OSError:
        conn.close()
        return
    a = threading.Thread(target=pump, args=(conn, peer), daemon=True)
    b = threading.Thread(target=pump, args=(peer, conn), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    conn.close()
    peer.close()


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("tcp", "unix"):
        sys.stderr.write("usage: relay.py tcp PORT SOCKET | relay.py unix SOCKET PORT\n")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if sys.argv[1] == "tcp":
        port, path = int(sys.argv[2]), sys.argv[3]
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
    else:
        path, port = sys.argv[2], int(sys.argv[3])
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)

        def connect():
            return socket.create_connection(("127.0.0.1", port))
    listener.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, connect), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
