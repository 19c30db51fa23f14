"""Where the files kept at the repository's top level (probes/, reports/) are: an environment
variable's directory, else the checkout's, else the copy an installed wheel carries (setup.py
packs them as netcheck/bundled/)."""

from __future__ import annotations

import os
from pathlib import Path


def top_level(env: str, *parts: str) -> Path:
    given = os.environ.get(env)
    if given:
        return Path(given)
    package = Path(__file__).resolve().parent
    checkout = package.parent.joinpath(*parts)
    if checkout.is_dir():
        return checkout
    return package.joinpath("bundled", *parts)
