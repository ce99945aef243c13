"""2. Cold start: a fresh process imports the API handler, fetches the Production model from the S3
store (moto server on 127.0.0.1) and answers its first prediction. Compared, in the same run, with a
process doing the same through mlflow.pyfunc.load_model("models:/...@production"), and with a bare
interpreter start."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, local_store, print_table, write_result

REPEATS = 5
CHILD = str(ROOT / "benchmarks" / "_cold_start_child.py")
API_IMAGE_SITE = ROOT / "benchmarks" / ".api-image"


def api_image_site(variant: str = "light") -> str:
    """The API image's packages, installed into a folder once: cold start must be measured with what the
    image has, not with the dev venv. ``light``: functions/api/requirements.txt plus, without its
    dependencies, xgboost-cpu for its C library (as the Dockerfile does). ``booster``: the image before
    the compiled trees were published, with the xgboost package and scipy."""
    site = API_IMAGE_SITE.with_name(f".api-image-{variant}")
    stamp = site / ".installed"
    requirements = ROOT / "functions" / "api" / "requirements.txt"
    nodeps = ROOT / "functions" / "api" / "requirements-nodeps.txt"
    wanted = (variant + requirements.read_text() + nodeps.read_text() + (ROOT / "constraints.txt").read_text()).encode()
    if not stamp.exists() or stamp.read_bytes() != wanted:
        print(f"  installing the API image's requirements ({variant}) into {site.name} (once)", flush=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--upgrade", "--target", str(site),
               "-c", str(ROOT / "constraints.txt")]  # fmt: skip
        subprocess.run([*pip, "-r", str(requirements)], check=True)
        subprocess.run([*pip, *(["--no-deps"] if variant == "light" else []), "-r", str(nodeps)], check=True)
        stamp.write_bytes(wanted)
    return str(site)


def installed_mb(site: str) -> float:
    return sum(p.stat().st_size for p in Path(site).rglob("*") if p.is_file() and "__pycache__" not in p.parts) / 1e6


def image_env(env: dict[str, str], variant: str = "light") -> dict[str, str]:
    paths = [api_image_site(variant), str(ROOT / "layers" / "runtime"), str(ROOT / "functions" / "api")]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, dict[str, float], str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return wall, (json.loads(lines[-1][7:]) if lines else {}), done.stderr


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def top_imports(stderr: str, count: int = 12) -> list[dict[str, Any]]:
    """Packages by cumulative import time from `python -X importtime` (largest import of each)."""
    totals: dict[str, int] = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            package = match.group(3).split(".")[0]
            if package not in {"api_function", "fraudops", "encodings", "site"}:
                totals[package] = max(totals.get(package, 0), int(match.group(1)))
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:count]
    return [{"package": name, "ms": us / 1000} for name, us in ranked]


def main() -> dict[str, Any]:
    with local_store() as store:
        env = {**os.environ, **store.env, "BENCH_TRACKING_URI": f"sqlite:///{store.state_dir / 'mlflow.db'}"}
        image = image_env(env)
        isolated = ["-s", "-S"]  # no site-packages: only the image's packages are importable
        bare = [run_child(["-c", "pass"], env)[0] for _ in range(REPEATS)]
        api_runs = [run_child([*isolated, CHILD, "api_total"], image) for _ in range(REPEATS)]
        booster_image = image_env(env, "booster")
        booster_runs = [run_child([*isolated, CHILD, "api_booster_path"], booster_image) for _ in range(REPEATS)]
        breakdown = median_of([run_child([*isolated, CHILD, "api_breakdown"], image)[1] for _ in range(REPEATS)])
        dev_venv = median_of([run_child([CHILD, "api_total"], env)[1] for _ in range(3)])
        pyfunc_runs = [run_child([CHILD, "pyfunc_total"], env) for _ in range(REPEATS)]
        _, _, importtime = run_child([*isolated, "-X", "importtime", CHILD, "api_total"], image)

    api_wall = statistics.median(w for w, _, _ in api_runs)
    booster_wall = statistics.median(w for w, _, _ in booster_runs)
    booster = median_of([r for _, r, _ in booster_runs])
    sizes = {variant: installed_mb(api_image_site(variant)) for variant in ("light", "booster")}
    pyfunc_wall = statistics.median(w for w, _, _ in pyfunc_runs)
    api = median_of([r for _, r, _ in api_runs])
    pyfunc = median_of([r for _, r, _ in pyfunc_runs])
    bare_wall = statistics.median(bare)
    rows = [
        ["bare interpreter (python -c pass)", bare_wall, "-", "-"],
        ["API handler: import + init + first request", api_wall, api["init"], api["first_request"]],
        ["  before: xgboost + scipy, trees compiled at load", booster_wall, booster["init"], booster["first_request"]],
        ["  same, in the dev venv (not the image)", dev_venv["total"], dev_venv["init"], dev_venv["first_request"]],
        ["pyfunc: load_model(models:/...@production)", pyfunc_wall, pyfunc["imports"] + pyfunc["load_model"],
         pyfunc["first_predict"]],
    ]  # fmt: skip
    print_table(
        f"Cold start, seconds (median of {REPEATS} fresh processes)", ["process", "wall", "init", "first"], rows
    )
    print_table(
        "API cold start by phase, seconds",
        ["phase", "seconds"],
        [[k, v] for k, v in breakdown.items() if k not in {"total"}],
    )
    imports = top_imports(importtime)
    print_table("Slowest top-level imports of the API handler (-X importtime)", ["package", "ms"],
                [[i["package"], i["ms"]] for i in imports])  # fmt: skip
    result = {
        "repeats": REPEATS,
        "bare_interpreter_s": bare_wall,
        "api_wall_s": api_wall,
        "booster_path_wall_s": booster_wall,
        "booster_path_phases_s": booster,
        "image_installed_mb": sizes,
        "api_phases_s": api,
        "api_breakdown_s": breakdown,
        "api_in_dev_venv_s": dev_venv,
        "pyfunc_wall_s": pyfunc_wall,
        "pyfunc_phases_s": pyfunc,
        "speedup_vs_pyfunc": pyfunc_wall / api_wall,
        "top_imports": imports,
        "targets": {"total<=0.7s": api_wall <= 0.7, "image<=150MB": sizes["light"] <= 150},
    }
    print(f"  API image {sizes['light']:.0f} MB installed (before: {sizes['booster']:.0f} MB); cold start "
          f"{api_wall:.2f} s (before: {booster_wall:.2f} s)")  # fmt: skip
    print(f"  API cold start {api_wall:.2f} s vs pyfunc {pyfunc_wall:.2f} s ({result['speedup_vs_pyfunc']:.1f}x); "
          f"targets {result['targets']}")  # fmt: skip
    write_result("cold_start", result)
    return result


if __name__ == "__main__":
    main()
