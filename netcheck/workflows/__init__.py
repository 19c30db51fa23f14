"""The jobs netcheck runs, callable from Python: preflight, run (an inventory, or kubeconfig
contexts), deploy and undeploy, discover, lint, cidr plan and check, gossip analyze. Each is a
plain function (async where it talks to clusters) that takes its options and returns the run's
report (or what it did) with the contexts it could not use; it never exits and never prints.
What the user should hear along the way (a warning, an agent that did not answer) goes to the
Feedback it is given, and progress to its bars. The CLI parses options, calls one workflow and
renders what comes back.

    import asyncio
    from netcheck.workflows.run import RunOptions, run_contexts

    done = asyncio.run(run_contexts("kubeconfig", ["CP_EAST", "DP_WEST"], RunOptions()))
    print(done.report.verdict, done.errors)
"""
