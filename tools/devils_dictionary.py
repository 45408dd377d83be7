#!/usr/bin/env python3
"""Extracts the text of Ambrose Bierce's "The Devil's Dictionary" (public
domain) from Debian's dict-devil package into data/text/devils-dictionary.txt:
the dictd file minus dictfmt's header entries and trailing alphabet line.

    apt-get install dict-devil
    python3 tools/devils_dictionary.py /usr/share/dictd/devil.dict.dz data/text/devils-dictionary.txt
"""
import gzip
import sys


def main(src: str, dst: str) -> None:
    with gzip.open(src, "rt", encoding="ascii") as f:
        text = f.read()
    start = text.index("            The Internet Wiretap 1st Online Edition of")
    end = text.rindex(" abcdefghijklmnopqrstuvwxyz")
    body = text[start:end].rstrip() + "\n"
    with open(dst, "w", encoding="ascii") as f:
        f.write(body)
    print(f"{dst}: {len(body)} characters, {len(set(body))} distinct")


if __name__ == "__main__":
    main(*sys.argv[1:3])
