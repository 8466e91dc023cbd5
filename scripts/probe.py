"""Try one TCP connection from a given source address; print the outcome. Used by demo.sh.

usage: probe.py SOURCE DEST PORT   (exit 0 if the connection was accepted)
"""

from __future__ import annotations

import socket
import sys


def main() -> int:
    src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        s.bind((src, 0))
        try:
            s.connect((dst, port))
        except TimeoutError:
            print(f"  {src} -> {dst}:{port}  DROPPED (no answer within 1 s)")
            return 1
        except ConnectionRefusedError:
            print(f"  {src} -> {dst}:{port}  REFUSED")
            return 1
    print(f"  {src} -> {dst}:{port}  connected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
