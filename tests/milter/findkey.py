#!/usr/bin/env python3
"""findkey.py PID KEYFILE: exit 0 if the RSA key's first prime occurs in the
memory of process PID (root reads /proc/PID/mem), 1 if it does not, 2 if the search itself failed.
Used to show that the worker holds no private key while the signer does."""
import re, subprocess, sys


def main():

    pid, keyfile = sys.argv[1], sys.argv[2]
    text = subprocess.run(["openssl", "pkey", "-in", keyfile, "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    m = re.search(r"prime1:\s*\n((?:\s+[0-9a-f:]+\n)+)", text)
    prime = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
    prime = prime.lstrip(b"\x00")
    needles = [prime, prime[::-1]]  # big-endian (DER) and little-endian (BIGNUM words)
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if "r" not in perms:
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > (1 << 30):
                continue  # sanitizer shadow and reserved ranges, not heap
            overlap = len(prime)
            pos, prev = lo, b""
            while pos < hi:
                try:
                    mem.seek(pos)
                    chunk = mem.read(min(hi - pos, 1 << 24))
                except (OSError, ValueError, OverflowError):
                    break
                if not chunk:
                    break
                data = prev + chunk
                if any(n in data for n in needles):
                    found = True
                    break
                prev = chunk[-overlap:]
                pos += len(chunk)
            if found:
                break
    return 0 if found else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # a failed search must not look like "not found"
        print(f"findkey: {e}", file=sys.stderr)
        sys.exit(2)
