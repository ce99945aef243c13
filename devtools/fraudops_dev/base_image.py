"""The Lambda base image, pinned by digest in every Dockerfile, and how to move the pin.

Both Dockerfiles start ``FROM public.ecr.aws/lambda/python:3.12@sha256:<digest>``: the tag says what
it is, the digest makes every `sam build` (dev's, prod's, next month's) start from the same bytes.
AWS republishes the tag with OS and runtime patches, so bump the pin on purpose, as a reviewed change:

    make bump-base-image            # resolves the tag's current digest and rewrites both Dockerfiles

Resolving asks the public ECR registry (the Docker Registry HTTP API: an anonymous token from
``https://public.ecr.aws/token/``, then ``HEAD /v2/<repository>/manifests/<tag>``, whose
``Docker-Content-Digest`` header is the multi-architecture index's digest); it needs the internet,
nothing else (no Docker, no AWS credentials).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO_ROOT / "functions" / "api" / "Dockerfile", REPO_ROOT / "functions" / "train" / "Dockerfile"]
REGISTRY = "public.ecr.aws"
PINNED_FROM = re.compile(
    r"^FROM public\.ecr\.aws/(?P<repository>[\w./-]+):(?P<tag>[\w.-]+)@(?P<digest>sha256:[0-9a-f]{64})", re.M
)
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def pins() -> dict[Path, tuple[str, str, str]]:
    """Dockerfile -> (repository, tag, digest) of its FROM line."""
    found = {}
    for dockerfile in DOCKERFILES:
        match = PINNED_FROM.search(dockerfile.read_text())
        if match is None:
            raise ValueError(f"{dockerfile}: FROM is not public.ecr.aws/<repository>:<tag>@sha256:<digest>")
        found[dockerfile] = (match["repository"], match["tag"], match["digest"])
    return found


def resolve(repository: str, tag: str, timeout: float = 20.0) -> str:
    """The digest the registry serves for repository:tag now."""
    token_url = f"https://{REGISTRY}/token/?service={REGISTRY}&scope=repository:{repository}:pull"
    with urllib.request.urlopen(token_url, timeout=timeout) as response:
        token = json.load(response)["token"]
    request = urllib.request.Request(
        f"https://{REGISTRY}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        digest = str(response.headers["Docker-Content-Digest"])
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValueError(f"unexpected digest from the registry: {digest!r}")
    return digest


def bump() -> int:
    changed = 0
    for dockerfile, (repository, tag, digest) in pins().items():
        latest = resolve(repository, tag)
        if latest == digest:
            print(f"{dockerfile.relative_to(REPO_ROOT)}: {repository}:{tag} is current ({digest})")
            continue
        dockerfile.write_text(dockerfile.read_text().replace(f"{tag}@{digest}", f"{tag}@{latest}"))
        print(f"{dockerfile.relative_to(REPO_ROOT)}: {repository}:{tag} {digest} -> {latest}")
        changed += 1
    if changed:
        print("Rebuild and run `make image-check` and `make test`, then commit the new pin.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=["show", "bump"], help="show the pins, or re-resolve and rewrite them")
    args = parser.parse_args(argv)
    if args.command == "bump":
        return bump()
    for dockerfile, (repository, tag, digest) in pins().items():
        print(f"{dockerfile.relative_to(REPO_ROOT)}: {REGISTRY}/{repository}:{tag}@{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
