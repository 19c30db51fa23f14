"""`gossip analyze`: saved nodetool outputs, Cassandra logs and Management API answers read and
checked, offline.

    from netcheck.workflows.gossip import analyze_files

    done = analyze_files(["node1-status.txt", "system.log"])
    print([f.code for f in done.analysis.findings], done.warnings)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from netcheck.diagnosis.gossip import analyze
from netcheck.files import size_words
from netcheck.model.gossip import GossipAnalysis, Observation
from netcheck.model.topology import Topology
from netcheck.nodetool.paste import observations
from netcheck.workflows.feedback import BadInput

# Cassandra's logback rolls system.log and debug.log at 50 MB: one whole file fits; a bigger
# one (a log that never rolled, a device) is read in part, and the warning says which part
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class GossipDone:
    """analysis: the nodes, views and findings; warnings: the files' own (nothing
    recognised in one, one read in part), beside the analysis' warnings."""

    analysis: GossipAnalysis
    warnings: tuple[str, ...] = ()


def read_bounded(path: str, limit: int | None = None) -> tuple[str, str]:
    """The file's text, at most `limit` bytes of it (MAX_FILE_BYTES): a regular file's last
    part (a log's newest lines, from a line's start), anything else's first. Second: the
    warning when it was read in part, else ""."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                f.seek(info.st_size - limit - 1)  # and the byte before: a line's end?
                data = f.read(limit + 1)
                data = data[data.find(b"\n") + 1 :] if b"\n" in data else data[1:]
                size = size_words(limit)
                part = f"{path}: larger than {size}; only its last {size} were read"
            else:
                data = f.read(limit + 1)
                part = ""
                if len(data) > limit:
                    data = data[:limit]
                    size = size_words(limit)
                    part = f"{path}: more than {size}; only its first {size} were read"
    except OSError as exc:
        raise BadInput(
            f"{path}: cannot read it ({exc.strerror}); give a saved nodetool output or log"
        ) from None
    return data.decode("utf-8", errors="replace"), part


def analyze_files(files: Sequence[str], topology: Topology | None = None) -> GossipDone:
    """Every file's outputs and log lines, analysed together (and against the inventory's
    topology when given). A file that cannot be read is BadInput; a file with nothing
    recognised in it is a warning, unless no file had anything (BadInput)."""
    obs: list[Observation] = []
    warnings: list[str] = []
    for path in files:
        text, part = read_bounded(path)
        if part:
            warnings.append(part)
        found = observations(text, path)
        if not found:
            warnings.append(f"{path}: nothing recognised in it")
        obs.extend(found)
    if not obs:
        raise BadInput(
            f"{', '.join(files)}: no nodetool status, describecluster, gossipinfo, Cassandra "
            "log lines or Management API answer found; save the command output as text "
            "(nodetool status > node1.txt)"
        )
    return GossipDone(analysis=analyze(obs, topology), warnings=tuple(warnings))
