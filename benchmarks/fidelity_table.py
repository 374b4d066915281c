#!/usr/bin/env python3
"""Regenerate the fidelity table in README.md from the bundled targets and their measurements.

Run: python benchmarks/fidelity_table.py [--check]   (--check: exit 1 if README.md is out of date)
"""

import re
import sys
from pathlib import Path

from hwsim.fidelity.table import BEGIN, END, fidelity_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def main(argv):
    text = README.read_text()
    pat = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pat.search(text):
        print(f"README.md has no {BEGIN} ... {END} block", file=sys.stderr)
        return 2
    new = pat.sub(lambda _: fidelity_markdown(), text)
    if "--check" in argv:
        return 0 if new == text else 1
    README.write_text(new)
    print(fidelity_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
