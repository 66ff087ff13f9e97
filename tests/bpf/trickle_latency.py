# Sends COUNT single UDP datagrams to DST:7000, 300 ms apart, and prints for each the ms
# until FILE grew (the drain wrote it), or "never" after 2 s. Used by the drain-bound tests.
import os
import socket
import sys
import time

dst, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(count):
    size = os.path.getsize(path)
    t0 = time.monotonic()
    s.sendto(b"x" * 32, (dst, 7000))
    while os.path.getsize(path) == size and time.monotonic() - t0 < 2.0:
        time.sleep(0.001)
    print("%.1f" % ((time.monotonic() - t0) * 1000) if os.path.getsize(path) > size else "never")
    time.sleep(0.3)
