"""Send a Kafka ApiVersions (v0) request to HOST:PORT; exit 0 when the broker answers it."""

import socket
import struct
import sys

host, _, port = sys.argv[1].rpartition(":")
client = b"healthcheck"
# request header v1: api_key 18 (ApiVersions), api_version 0, correlation id, client id
body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
try:
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        head = s.recv(8)
except OSError as exc:
    sys.exit(f"{sys.argv[1]}: {exc}")
if len(head) < 8 or struct.unpack(">ii", head)[1] != 7:
    sys.exit(f"{sys.argv[1]}: no ApiVersions answer")
print(f"{sys.argv[1]}: broker answered ApiVersions")
