#!/usr/bin/env python3
"""Fails when a test listed in expected-pass.txt did not pass.

usage: check-expected.py RESULTS.tsv expected-pass.txt
RESULTS.tsv is what ../shared/conformance/swift-functional.sh writes:
outcome <TAB> test-id <TAB> seconds <TAB> reason.
"""
import sys

results_path, expected_path = sys.argv[1], sys.argv[2]
outcomes = {}
with open(results_path) as f:
    for line in f:
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 2:
            outcomes[parts[1]] = (parts[0], parts[3] if len(parts) > 3 else "")
expected = [l.strip() for l in open(expected_path) if l.strip() and not l.startswith("#")]
bad = [(t, outcomes.get(t, ("missing", ""))) for t in expected if outcomes.get(t, ("missing",))[0] != "passed"]
passed = sum(1 for o, _ in outcomes.values() if o == "passed")
print(f"conformance: {passed} passed of {len(outcomes)} run; {len(expected)} expected to pass")
for t, (o, why) in bad:
    print(f"  REGRESSION {o}: {t}  {why}")
sys.exit(1 if bad else 0)
