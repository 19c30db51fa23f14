"""Bad input, all of it: every parser of outside text gets a named error or a result, in bounded
time, never a traceback and never a secret in the message.

Property tests (hypothesis) run 500 inputs each in `make test` and 10,000 in `make fuzz`;
the regression tests below them are the inputs the first fuzzing round found.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from netcheck.agent.server import AgentSettings, parse_probe_request
from netcheck.agent.transport import AgentError, _info_from_json
from netcheck.agent.wire import WireError, result_from_json
from netcheck.discovery.inventory import InventoryError, load_inventory, parse_inventory
from netcheck.kube.client import forbidden_verb
from netcheck.kube.config import connection, list_contexts
from netcheck.kube.errors import KubeconfigError
from netcheck.model.text import ascii_int, load_yaml
from netcheck.nodetool.describecluster import parse_describecluster
from netcheck.nodetool.gossipinfo import parse_gossipinfo
from netcheck.nodetool.logs import parse_log
from netcheck.nodetool.paste import nodetool_command, observations, sections
from netcheck.nodetool.status import parse_status
from tests.helpers import GOOD_RESULT

pytestmark = pytest.mark.fuzz
DATA = Path(__file__).parent / "data" / "nodetool"

# --- strategies ------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=40,
)


def real_lines() -> list[str]:
    lines: list[str] = []
    for f in sorted(DATA.glob("*")):
        if f.suffix in (".txt", ".log"):
            lines += f.read_text(encoding="utf-8", errors="replace").splitlines()[:80]
    return lines


REAL = real_lines()
# real output lines, cut, spliced and sprinkled with noise: what a broken paste looks like
line_soup = st.lists(
    st.one_of(
        st.sampled_from(REAL),
        st.sampled_from(REAL).map(lambda s: s[: len(s) // 2]),
        st.tuples(st.sampled_from(REAL), st.text(max_size=20)).map(lambda t: t[0] + t[1]),
        st.text(max_size=80),
        st.just("²³ ٣٤ 9999999999999999999999999999999999999999999"),
        st.just("nodetool" + " -x" * 60),
    ),
    max_size=40,
).map("\n".join)

VALID_INVENTORY = """
clusters:
  - name: CP_EAST
    region: east
    pod_cidrs: [198.18.0.0/20]
    endpoints:
      - name: cp-1
        address: 198.18.1.10
        datacenter: dc1
        rack: r1
        agent: http://198.19.128.10:9925
        ports: [7000, {port: 7001, kind: tls}, 8080]
"""


def mutated_inventory(doc: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(doc, dict) and doc:
        k = list(doc)[key % len(doc)]
        return {**doc, k: mutated_inventory(doc[k], rest, value)}
    if isinstance(doc, list) and doc:
        i = key % len(doc)
        return [*doc[:i], mutated_inventory(doc[i], rest, value), *doc[i + 1 :]]
    return value


def one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message and len(message) < 1000, message


# --- inventory -------------------------------------------------------------------------------


@given(st.text(max_size=400))
def test_inventory_text_gives_a_topology_or_a_one_line_error(text):
    try:
        parse_inventory(text, "inv.yaml")
    except InventoryError as exc:
        one_line(str(exc))
        assert str(exc).startswith("inv.yaml")


@given(st.lists(st.integers(0, 20), max_size=6), json_like)
def test_a_valid_inventory_with_any_value_anywhere(path, value):
    doc = mutated_inventory(yaml.safe_load(VALID_INVENTORY), path, value)
    try:
        text = yaml.safe_dump(doc)
    except (yaml.YAMLError, ValueError):
        return
    try:
        parse_inventory(text, "inv.yaml")
    except InventoryError as exc:
        one_line(str(exc))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (VALID_INVENTORY.replace("9925", "99999"), "is not an agent URL"),
        (VALID_INVENTORY.replace("region: east", "region: east\n" + "    x: " + "[" * 500), ""),
        (VALID_INVENTORY.replace("dc1", "9" * 4301), ""),
        (VALID_INVENTORY.replace("datacenter: dc1", "role: [x]"), "unknown role"),
        (VALID_INVENTORY.replace("kind: tls", "kind: [tls]"), "unknown kind"),
        (VALID_INVENTORY.replace("rack: r1", '"ra\\nck": r1'), "unknown key"),
        (
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
            "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
            "alias",
        ),
    ],
)
def test_inventory_regressions(text, words):
    started = time.monotonic()
    with pytest.raises(InventoryError) as exc:
        parse_inventory(text, "inv.yaml")
    one_line(str(exc.value))
    assert words in str(exc.value)
    assert time.monotonic() - started < 10  # bounded: alias bombs took 37 s


def test_inventory_that_is_not_utf8(tmp_path):
    bad = tmp_path / "inv.yaml"
    bad.write_bytes(VALID_INVENTORY.encode() + b"\xff\xfe\x80")
    with pytest.raises(InventoryError, match="not UTF-8"):
        load_inventory(str(bad))


# --- kubeconfig ------------------------------------------------------------------------------

SECRET_TOKEN = "s3cr3t-token-value-0123456789"
SECRET_PASSWORD = "hunter2-password-value"


def kubeconfig(user: Any, cluster: Any = None, context: Any = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": cluster if cluster is not None else {"server": "https://127.0.0.1:1"},
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {
                "name": "ctx",
                "context": context if context is not None else {"cluster": "c", "user": "u"},
            }
        ],
        "current-context": "ctx",
    }


def kube_outcome(path: Path) -> str:
    """What a user sees for every context: the resolved server, or the one-line error."""
    seen = []
    try:
        names = [c.name for c in list_contexts(str(path))]
    except KubeconfigError as exc:
        return str(exc)
    for name in names[:3]:
        try:
            seen.append(connection(str(path), name).server)
        except KubeconfigError as exc:
            seen.append(str(exc))
    return "\n".join(seen)


no_plugins = st.dictionaries(
    st.sampled_from(
        [
            "token",
            "password",
            "username",
            "client-certificate-data",
            "client-key-data",
            "tokenFile",
            "x",
        ]
    ),
    json_like,
    max_size=4,
)


@given(no_plugins, json_like, json_like)
def test_kubeconfig_any_user_cluster_or_context(tmp_path_factory, user, cluster, context):
    path = tmp_path_factory.mktemp("kc") / "config"
    user = {
        **(user if isinstance(user, dict) else {}),
        "token": SECRET_TOKEN,
        "password": SECRET_PASSWORD,
    }
    path.write_text(yaml.safe_dump(kubeconfig(user, cluster, context)))
    for line in kube_outcome(path).splitlines():
        one_line(line)
        assert SECRET_TOKEN not in line and SECRET_PASSWORD not in line


@given(st.binary(max_size=300))
def test_kubeconfig_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("kc") / "config"
    path.write_bytes(data)
    for line in kube_outcome(path).splitlines():
        one_line(line)


def test_kubeconfig_regressions(tmp_path):
    cases = {
        "ca-not-a-cert": kubeconfig(
            {"token": SECRET_TOKEN},
            {
                "server": "https://127.0.0.1:1",
                "certificate-authority-data": base64.b64encode(b"nope").decode(),
            },
        ),
        "context-is-a-list": {
            **kubeconfig({"token": SECRET_TOKEN}),
            "contexts": [{"name": "ctx", "context": ["x"]}],
        },
        "user-is-a-list": {
            **kubeconfig({"token": SECRET_TOKEN}),
            "users": [{"name": "u", "user": [SECRET_TOKEN]}],
        },
        "token-in-a-bad-place": kubeconfig(
            {"token": {"nested": SECRET_TOKEN}, "password": SECRET_PASSWORD}
        ),
    }
    for name, doc in cases.items():
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc))
        out = kube_outcome(path)
        assert out.startswith("context "), (name, out)  # an error, not a server URL
        assert SECRET_TOKEN not in out and SECRET_PASSWORD not in out, (name, out)
        for line in out.splitlines():
            one_line(line)
    assert "not a PEM certificate" in kube_outcome(tmp_path / "ca-not-a-cert")
    assert "has no 'context' mapping" in kube_outcome(tmp_path / "context-is-a-list")


def test_kubeconfig_client_key_that_does_not_match(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    one, other = ca.issue_cert("a.example"), ca.issue_cert("b.example")
    user = {
        "client-certificate-data": base64.b64encode(one.cert_chain_pems[0].bytes()).decode(),
        "client-key-data": base64.b64encode(other.private_key_pem.bytes()).decode(),
    }
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            kubeconfig(
                user,
                {
                    "server": "https://127.0.0.1:1",
                    "certificate-authority-data": base64.b64encode(ca.cert_pem.bytes()).decode(),
                },
            )
        )
    )
    out = kube_outcome(path)
    assert "does not belong to the certificate" in out
    assert other.private_key_pem.bytes().decode().splitlines()[1] not in out


def test_a_kubeconfig_of_300_contexts_is_read_once(tmp_path, monkeypatch):
    """It was parsed twice per context (54 s for 300): now once, whatever the contexts."""
    import netcheck.kube.config as kube_config

    doc = kubeconfig({"token": SECRET_TOKEN})
    doc["contexts"] = [
        {"name": f"ctx{i}", "context": {"cluster": "c", "user": "u"}} for i in range(300)
    ]
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    parses = []
    real = kube_config.load_yaml
    monkeypatch.setattr(kube_config, "load_yaml", lambda text: parses.append(1) or real(text))
    loaded = kube_config.load_kubeconfig(str(path))  # what `run --all-contexts` does
    assert len(list_contexts(loaded)) == 300
    for i in range(300):
        assert connection(loaded, f"ctx{i}").server == "https://127.0.0.1:1"
    assert len(parses) == 1


def test_kubeconfig_alias_bomb(tmp_path):
    path = tmp_path / "config"
    path.write_text(
        "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    )
    started = time.monotonic()
    out = kube_outcome(path)
    assert "alias" in out and time.monotonic() - started < 10  # was 37 s, then MemoryError


# --- API server answers ----------------------------------------------------------------------

REAL_403 = (
    '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
    '"serviceaccounts \\"netcheck-agent\\" is forbidden: User \\"netcheck-ci\\" cannot create '
    'resource \\"serviceaccounts\\" in API group \\"\\" in the namespace \\"netcheck\\"",'
    '"reason":"Forbidden","details":{"name":"netcheck-agent","kind":"serviceaccounts"},"code":403}'
)


def test_the_refused_verb_is_read_off_a_real_403():
    # as kube-apiserver v1.34.4 answered a server-side apply that would create the object
    assert forbidden_verb(REAL_403.encode()) == "create"
    assert forbidden_verb(REAL_403.replace("create", "patch").encode()) == "patch"
    assert forbidden_verb(REAL_403.replace("create", "explode").encode()) is None
    assert forbidden_verb(b"<html>403 Forbidden</html>") is None


@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(lambda t: json.dumps({"message": t}).encode()),
        st.sampled_from(["get", "list", "frobnicate", "", "CREATE"]).map(
            lambda v: json.dumps({"message": f'x cannot {v} resource "y"'}).encode()
        ),
    )
)
def test_a_403_of_any_shape_gives_a_known_verb_or_none(raw):
    verb = forbidden_verb(raw)
    assert verb is None or verb in (
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    )


# --- nodetool and logs -----------------------------------------------------------------------

PARSERS = (parse_status, parse_describecluster, parse_gossipinfo)


@given(st.one_of(line_soup, st.text(max_size=600)))
def test_nodetool_parsers_read_anything(text):
    for parse in PARSERS:
        parse(text)
    parse_log(text)
    sections(text)
    observations(text, "paste.txt")


@given(st.text(alphabet="0123456789²³٣٤:/[]. -", max_size=60))
def test_numbers_in_nodetool_text_are_ascii_and_bounded(text):
    for parse in PARSERS:
        parse(f"Datacenter: dc1\nUN  198.18.1.10:{text}  1 KiB  16  25%  {text}  r1\n")
    n = ascii_int(text)
    assert n is None or (text.strip().lstrip("+-").isascii() and abs(n) < 10**31)


def test_nodetool_number_regressions():
    rows, _ = parse_status("Datacenter: dc1\nUN  198.18.1.10:7²00  1 KiB  16  25%  x  r1\n")
    assert [r.port for r in rows] in ([], [None])  # '7²00' is no port
    rows, _ = parse_status(
        "Datacenter: dc1\nUN  198.18.1.10:" + "7" * 5000 + "  1 KiB  16  x  r1\n"
    )
    assert [r.port for r in rows] in ([], [None])
    description, _ = parse_describecluster(
        "Stats for all nodes:\n\tLive: ²\n\tUnreachable: " + "9" * 5000
    )
    assert description.live is None and description.unreachable_count is None
    endpoints, _ = parse_gossipinfo(
        "/198.18.1.10\n  generation:" + "9" * 5000 + "\n  heartbeat:²\n"
    )
    assert [(e.generation, e.heartbeat) for e in endpoints] == [(None, None)]
    endpoints, _ = parse_gossipinfo("/198.18.1.10\n  generation:1700000000\n  heartbeat:42\n")
    assert [(e.generation, e.heartbeat) for e in endpoints] == [(1700000000, 42)]


def test_the_paste_splitter_is_linear():
    line = "nodetool" + " -x" * 5000
    started = time.monotonic()
    assert nodetool_command(line[:1000]) is None
    sections(line + "\n" + "$ nodetool" + " -x" * 42 + "\n")
    assert time.monotonic() - started < 10  # was 107 s for 42 options


# --- agent requests and answers --------------------------------------------------------------

SETTINGS = AgentSettings(token="t" * 32, allow=())


@given(json_like)
def test_the_agents_request_parser(body):
    with contextlib.suppress(WireError, OverflowError):
        parse_probe_request(body, SETTINGS)


@given(st.dictionaries(st.sampled_from(["targets", "timeout_s", "payload_bytes", "x"]), json_like))
def test_the_agents_request_parser_near_valid(body):
    try:
        _, timeout, _ = parse_probe_request(body, SETTINGS)
    except (WireError, OverflowError):
        return
    assert 0 < timeout <= 30


FOLLOW_KEYS = ["timeout_s", "trace_hops", "trace_group", "latency_count", "pmtu_group", "x"]


@given(st.dictionaries(st.sampled_from(FOLLOW_KEYS), json_like, max_size=6))
def test_the_agents_follow_up_parser(follow):
    body = {"targets": [{"address": "127.0.0.1", "port": 7000, "follow": follow}]}
    try:
        (target,), _, _ = parse_probe_request(body, SETTINGS)
    except (WireError, OverflowError) as exc:
        one_line(str(exc))
        return
    f = target.follow
    assert f is not None and 0 < f.timeout_s <= 30
    assert 0 <= f.trace_hops <= 100 and 0 <= f.latency_count <= 100


RESULT_KEYS = [
    "address",
    "port",
    "kind",
    "outcome",
    "latency_ms",
    "detail",
    "local_address",
    "observed_source",
    "evidence",
    "followed",
]


@given(st.dictionaries(st.sampled_from(RESULT_KEYS), json_like, max_size=9))
def test_the_collectors_answer_parser(replaced):
    try:
        r = result_from_json({**GOOD_RESULT, **replaced}, "results[0]")
    except WireError as exc:
        one_line(str(exc))
        return
    assert r.latency_ms is None or r.latency_ms >= 0


@given(
    st.lists(
        st.dictionaries(st.sampled_from(RESULT_KEYS), json_like, max_size=4).map(
            lambda d: {**GOOD_RESULT, "kind": "syn", **d}
        ),
        max_size=6,
    )
)
def test_the_collectors_follow_up_answer_parser(followed):
    try:
        r = result_from_json({**GOOD_RESULT, "followed": followed}, "results[0]")
    except WireError as exc:
        one_line(str(exc))
        return
    assert len(r.followed) <= 4 and all(f.kind.raw for f in r.followed)
    assert all((f.address, f.port) == (r.address, r.port) for f in r.followed)


@given(json_like)
def test_the_collectors_info_parser(body):
    try:
        info = _info_from_json("http://a:9925", {"agent": "netcheck", "limits": body})
    except AgentError as exc:
        one_line(str(exc))
        return
    assert info.max_batch >= 1 and info.concurrency >= 1 and info.rate > 0


@given(st.text(max_size=200))
def test_bounded_yaml_never_raises_anything_but_yaml_errors(text):
    with contextlib.suppress(yaml.YAMLError):
        load_yaml(text)


def test_json_answers_nested_too_deep_are_agent_errors():
    from netcheck.agent.transport import json_answer

    with pytest.raises(AgentError):
        json_answer("http://a:9925", "/v1/probe", "[" * 100_000, "fix")
    assert json.loads("[1]") == [1]


# --- the lab's nodetool batch frames -----------------------------------------------------


def test_nodetool_batch_frames_split_into_results():
    from netcheck.lab.exec import batch_results

    framed = (
        "@@netcheck-begin status\nDatacenter: dc1\nUN  198.18.1.10\n@@netcheck-stderr\n"
        "@@netcheck-end 0\n@@netcheck-begin describecluster\n@@netcheck-stderr\n"
        "nodetool: Failed to connect to '127.0.0.1:7199' - ConnectException\n@@netcheck-end 1\n"
    )
    ok, failed, missing = batch_results(framed, 3)
    assert ok.ok and ok.output == "Datacenter: dc1\nUN  198.18.1.10\n"
    assert not failed.ok and failed.error.startswith("exit 1: nodetool: Failed to connect")
    assert not missing.ok and "ended before" in missing.error


@given(st.one_of(line_soup, st.text(max_size=300)), st.integers(0, 5))
def test_nodetool_batch_frames_of_any_output(text, expected):
    from netcheck.lab.exec import batch_results

    got = batch_results(text, expected)
    assert len(got) == expected
    for r in got:
        assert r.ok or "\n" not in r.error


def test_a_broken_entry_fails_only_the_contexts_that_use_it(tmp_path):
    """kubectl ignores entries no chosen context uses: so does netcheck."""
    doc = kubeconfig({"token": SECRET_TOKEN})
    doc["users"].append({"name": "other", "user": ["not", "a", "mapping"]})
    doc["contexts"].append({"name": "uses-other", "context": {"cluster": "c", "user": "other"}})
    doc["contexts"].append({"name": "not-a-context", "context": "oops"})
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    assert [c.name for c in list_contexts(str(path))] == ["ctx", "uses-other", "not-a-context"]
    assert connection(str(path), "ctx").server == "https://127.0.0.1:1"
    with pytest.raises(KubeconfigError, match=r"users\[1\] \(other\) has no 'user' mapping"):
        connection(str(path), "uses-other")
    with pytest.raises(KubeconfigError, match="has no 'context' mapping"):
        connection(str(path), "not-a-context")
