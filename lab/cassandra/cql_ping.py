#!/usr/bin/env python3
"""Answer whether a CQL server is ready: send a v4 OPTIONS request and expect a SUPPORTED reply.

Usage: cql_ping.py [host] [port]. Exit 0 when ready, 1 otherwise. Standard library only.
"""
import socket
import struct
import sys


def ping(host: str, port: int, timeout: float = 2.0) -> bool:
    # 04 00 0000 05 00000000: v4 request, no flags, stream 0, OPTIONS, empty body.
    options = struct.pack(">BBhBi", 0x04, 0x00, 0, 0x05, 0)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(options)
            header = b""
            while len(header) < 9:
                chunk = s.recv(9 - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:
        return False
    version, _flags, _stream, opcode, _length = struct.unpack(">BBhBi", header)
    # 0x84: v4 response; 0x06: SUPPORTED.
    return version == 0x84 and opcode == 0x06


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 9042
    sys.exit(0 if ping(host, port) else 1)
