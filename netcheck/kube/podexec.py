"""Kubernetes exec over websockets and the pod logs API: request shapes and answer parsing.

Exec is `GET /api/v1/namespaces/NS/pods/POD/exec?command=...&container=C&stdout=1&stderr=1`
upgraded to a websocket with subprotocol `v4.channel.k8s.io`. Only v4 is offered: the API
server passes a v4 websocket through to the kubelet unchanged (every kubelet serves it; the
Kubernetes Python client has always used it), while an offer of v5 makes API servers of 1.30+
translate the stream to SPDY/3.1 for the kubelet; v5 adds only a close signal for stdin, which
netcheck does not send. Every binary frame starts with its channel: 1 stdout, 2 stderr, 3 the
final metav1.Status (JSON: Success, or Failure with reason NonZeroExitCode and the code in
details.causes).
RBAC: `create` on `pods/exec` (and `get` on API servers before the websocket-create check).
Logs are `GET .../pods/POD/log?container=C&sinceSeconds=N&limitBytes=M` as plain text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("v4.channel.k8s.io",)
STDOUT, STDERR, ERROR, CLOSE = 1, 2, 3, 255
MAX_OUTPUT = 8 << 20  # bytes kept per stream: nodetool's answers are kilobytes
LOG_LIMIT = 16 << 20  # limitBytes asked of the logs API
MAX_FRAME = 4 << 20  # the kubelet sends stream data in frames of tens of kilobytes
MAX_STATUS = 64 << 10


@dataclass(frozen=True, kw_only=True)
class ExecOutput:
    stdout: str
    stderr: str
    exit_code: int | None  # None: the command did not run or its end was not reported
    message: str = ""  # the API server's reason when it is not a plain exit code

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def exec_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/exec"


def exec_params(container: str, argv: Sequence[str]) -> list[tuple[str, str]]:
    """Query parameters: one `command` per argument, in order (a multi-valued parameter)."""
    return [
        *(("command", a) for a in argv),
        ("container", container),
        ("stdin", "false"),
        ("stdout", "true"),
        ("stderr", "true"),
        ("tty", "false"),
    ]


def log_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/log"


def log_params(container: str, since_s: float) -> dict[str, str]:
    return {
        "container": container,
        "sinceSeconds": str(max(1, int(since_s))),
        "limitBytes": str(LOG_LIMIT),
    }


class Frames:
    """Collects the frames of one exec session."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.err = bytearray()
        self.status: bytes | None = None

    def add(self, frame: bytes) -> None:
        if not frame:
            return
        channel, data = frame[0], frame[1:]
        if channel == STDOUT:
            self.out += data[: MAX_OUTPUT - len(self.out)]
        elif channel == STDERR:
            self.err += data[: MAX_OUTPUT - len(self.err)]
        elif channel == ERROR:
            self.status = ((self.status or b"") + data)[:MAX_STATUS]

    def result(self) -> ExecOutput:
        out = self.out.decode("utf-8", "replace")
        err = self.err.decode("utf-8", "replace")
        code, message = exit_status(self.status)
        return ExecOutput(stdout=out, stderr=err, exit_code=code, message=message)


def exit_status(raw: bytes | None) -> tuple[int | None, str]:
    """The exit code and reason from the error channel's metav1.Status."""
    if raw is None:
        return None, "the API server closed the stream without reporting how the command ended"
    text = raw.decode("utf-8", "replace").strip()
    try:
        doc: Any = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):  # channel.k8s.io v1-v3: plain text, empty on success
        return (0, "") if not text else (None, text.splitlines()[0][:200])
    if doc.get("status") == "Success":
        return 0, ""
    message = str(doc.get("message") or doc.get("reason") or "exec failed").splitlines()[0]
    if doc.get("reason") == "NonZeroExitCode":
        causes = (doc.get("details") or {}).get("causes") or []
        for cause in causes:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", "")), message[:200]
                except ValueError:
                    break
    return None, message[:200]
