"""Dependency audit for `make lint`: pip-audit over every pinned package in constraints.txt.

Known vulnerabilities fail the lint. Where the advisory service (PyPI's JSON API / OSV) cannot be
reached, as on the offline build machines this project is developed on, the audit says clearly that
it did not run, and fails only when FRAUDOPS_AUDIT_REQUIRED=1 (set it in a CI that has the network).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(ROOT / "constraints.txt"),
        "--no-deps", "--disable-pip", "--format", "json", "--progress-spinner", "off",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        report = {}
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    required = os.environ.get("FRAUDOPS_AUDIT_REQUIRED") == "1"
    if vulnerable:
        for dependency in vulnerable:
            ids = ", ".join(v["id"] for v in dependency["vulns"])
            print(f"audit: {dependency['name']} {dependency['version']}: {ids}")
        return 1
    if not audited:
        skips = [d["skip_reason"] for d in dependencies if "skip_reason" in d]
        reason = skips[0] if skips else (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"audit: NOT RUN - no package could be checked against the advisory service ({reason[:160]})")
        return 1 if required else 0
    skipped = len(dependencies) - len(audited)
    print(f"audit: {len(audited)} pinned packages audited, no known vulnerabilities ({skipped} could not be checked)")
    return 1 if required and skipped else 0


if __name__ == "__main__":
    sys.exit(main())
