"""Entry script of the frozen program: the same command line as ``python -m app``."""

import os
import sys

# A windowed build (Windows, macOS) starts with no standard streams: give logging and argparse
# somewhere harmless to write instead of failing on None.
for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115

from app.cli import main  # noqa: E402

sys.exit(main())
