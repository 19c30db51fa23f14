"""Bad input gets one line that names the input and the fix, and exit code 2."""

import pytest

from tests.lab_support import netcheck


@pytest.mark.parametrize(
    ("files", "args", "words"),
    [
        ({}, ["run", "--inventory", "/nonexistent.yaml"], "cannot read it"),
        ({"inv.yaml": "clusters: ["}, ["run", "--inventory", "{inv.yaml}"], "not valid YAML"),
        (
            {
                "inv.yaml": "clusters:\n  - name: A\n    region: r\n    endpoints:\n"
                "      - {name: a, address: 1.2.3.999, agent: 'http://x:1'}\n"
            },
            ["run", "--inventory", "{inv.yaml}"],
            "clusters[0].endpoints[0].address",
        ),
        (
            {
                "inv.yaml": "clusters:\n  - name: A\n    region: r\n    endpoints:\n"
                "      - {name: a, address: 198.18.1.1, agent: 'http://198.18.1.1:9925'}\n"
            },
            ["run", "--inventory", "{inv.yaml}"],
            "no agent token",
        ),
        (
            {
                "inv.yaml": "clusters:\n  - name: A\n    region: r\n    endpoints:\n"
                "      - {name: a, address: 198.18.1.1, agent: 'http://198.18.1.1:9925'}\n",
                "tok": "short\n",
            },
            ["run", "--inventory", "{inv.yaml}", "--token-file", "{tok}"],
            "at least 16 characters",
        ),
        ({"tok": "x" * 32}, ["agent", "--token-file", "{tok}", "--serve", "7000:udp"], "tcp, tls"),
        (
            {"tok": "x" * 32},
            ["agent", "--token-file", "{tok}", "--allow", "10.0.0.0/33"],
            "not a CIDR",
        ),
        ({}, ["agent", "--token-file", "/nonexistent-token"], "cannot read it"),
        # a device or a binary file where a small text file belongs: bounded, one line
        ({}, ["agent", "--token-file", "/dev/zero"], "--token-file /dev/zero: larger than 4096"),
        ({"tok": b"\xff" * 40}, ["agent", "--token-file", "{tok}"], "not UTF-8 text (byte 0)"),
        (
            {"tok": "x" * 32},
            ["agent", "--token-file", "{tok}", "--allow-file", "/dev/zero"],
            "--allow-file /dev/zero: larger than 1 MiB",
        ),
        ({}, ["lab", "up", "--spec", "/dev/zero"], "--spec /dev/zero: larger than 1 MiB"),
        (
            {"ca.pem": b"\x30\x82\x01\x0a" * 10},  # DER where PEM belongs
            ["run", "--context", "C", "--ca-file", "{ca.pem}"],
            "not UTF-8 text (byte 1); give the CA certificate's PEM",
        ),
        ({"spec.yaml": "clusters: []"}, ["lab", "up", "--spec", "{spec.yaml}"], "clusters"),
        # the CAs TLS is verified with: read before any cluster is asked anything
        ({}, ["run", "--context", "C", "--ca-file", "/nonexistent.pem"], "--ca-file /nonexistent"),
        (
            {"ca.pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"},
            ["run", "--context", "C", "--client-ca-file", "{ca.pem}"],
            "holds a private key; give the CA certificate only",
        ),
        (
            {"ca.pem": "not a certificate"},
            ["run", "--context", "C", "--ca-file", "{ca.pem}"],
            "no PEM certificate in it",
        ),
        (
            {"ca.pem": "x"},
            ["run", "--inventory", "/i.yaml", "--client-ca-file", "{ca.pem}"],
            "--client-ca-file goes with --context",
        ),
        (
            {},
            ["run", "--inventory", "/i.yaml", "--ca-secret", "demo/ca"],
            "--ca-secret goes with --context",
        ),
        (
            {},
            ["run", "--context", "C", "--client-ca-secret", "demo"],
            "--client-ca-secret 'demo': give NAMESPACE/NAME of the Secret",
        ),
        (
            {},
            ["serve", "--context", "C", "--ca-secret", "Demo/CA"],
            "--ca-secret 'Demo/CA': give NAMESPACE/NAME",
        ),
    ],
)
def test_bad_input(tmp_path, files, args, words):
    paths = {}
    for name, text in files.items():
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        paths[name] = str(path)
    for name, path in paths.items():
        args = [a.replace("{" + name + "}", path) for a in args]
    proc = netcheck(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert words in lines[0]


def test_agents_failing_alike_are_one_line_and_others_keep_theirs():
    """A pod proxy RBAC denies every agent of a context the same way: one line naming the
    first three and how many more; an agent failing its own way keeps its own line."""
    from netcheck.collector.run import AgentProblem
    from netcheck.workflows.probing import agent_problem_lines

    denied = "context C: RBAC forbids 'get' on 'pods/proxy' in namespace netcheck; grant it"
    alike = [
        AgentProblem(
            endpoint=f"e{i}",
            agent=f"kube://C/netcheck/a{i}",
            message=f"agent kube://C/netcheck/a{i}: {denied}",
        )
        for i in range(5)
    ]
    own = AgentProblem(
        endpoint="e9", agent="http://x:9925", message="agent http://x:9925: token refused"
    )
    problems = (*alike, own)
    assert agent_problem_lines(problems) == [
        "5 agents (kube://C/netcheck/a0, kube://C/netcheck/a1, kube://C/netcheck/a2 and 2 more): "
        + denied,
        "agent http://x:9925: token refused",
    ]
