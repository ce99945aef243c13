"""Published decision policies: versions, the active one, publish and rollback, with their history.

**One write per change.** Every change is one immutable *activation* object,
``policies/<model>/activations/<sequence>.json``, created with a conditional write (S3 ``If-None-Match:
*``; locally a hard link, which fails when the name is taken). It holds the whole policy, its version,
what was active before, why and who. The newest activation is the active policy, and the activations
are its history: there is no second object to fall out of step with the first, so a crash or a full disk
leaves the old state or the new one, never a mix. Two changes racing for the same sequence number: one
wins, the other fails with nothing written and says so.

**Retries change nothing twice** (as for Production: ``stages/change.py``). Publishing the policy that
is already active changes nothing; a rollback names the version it rolls back from (``--from``) and is
refused once another one is active; a publish may name it too; and an idempotency key makes a retry
report what the first attempt did and change nothing.

**The built-in policy** (the model's bands, no rules, no lists: what decides before anything is
published) is version ``0`` in the history: ``rollback --to builtin``, or a rollback of the first
published version, re-activates it with an activation like any other change.

No retraining, no registry: a policy is data beside the model, in the same store (local folder or S3).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fraudops.core.actor import default_actor
from fraudops.core.config import Settings
from fraudops.core.errors import FraudopsError, StoreError
from fraudops.decisions.policy import DecisionPolicy, PolicyError, builtin_policy
from fraudops.store import blob_store

PUBLISHED, ROLLED_BACK, UNCHANGED = "published", "rolled_back", "unchanged"
BUILTIN_POLICY_VERSION = 0  # the built-in policy's number in the history (published versions count from 1)
BUILTIN_NAME = "builtin"  # how it is named to users: `--to builtin`, policy_version "builtin"


def version_name(version: int | None) -> str:
    """A version as users see it: "3", or "builtin" (``None``: nothing was published before)."""
    return BUILTIN_NAME if version in (None, BUILTIN_POLICY_VERSION) else str(version)


def describe_version(version: int | None) -> str:
    """For a sentence: "version 3" or "the built-in policy"."""
    return "the built-in policy" if version in (None, BUILTIN_POLICY_VERSION) else f"version {version}"


_SEQUENCE = re.compile(r"activations/(\d{8})\.json$")


class PolicyChangeError(FraudopsError):
    """A publish or rollback was refused or lost a race; the active policy is unchanged."""


@dataclass(frozen=True)
class Activation:
    """One change of the active policy (and, read in order, its history)."""

    sequence: int
    version: int  # the policy version now active (a rollback re-activates an older version)
    action: str  # published | rolled_back
    from_version: int | None
    sha256: str
    reason: str
    actor: str
    time: str
    policy: dict[str, Any]
    idempotency_key: str | None = None  # a retry with the same key gets this activation back

    @property
    def builtin(self) -> bool:
        return self.version == BUILTIN_POLICY_VERSION

    def summary(self) -> dict[str, Any]:
        """The history row: everything but the policy document itself (the built-in policy's version
        as "builtin")."""
        body = asdict(self)
        body.pop("policy")
        body["name"] = self.policy.get("name")
        for key in ("version", "from_version"):
            if body[key] == BUILTIN_POLICY_VERSION:
                body[key] = BUILTIN_NAME
        return body

    def loaded(self) -> DecisionPolicy:
        return DecisionPolicy.from_dict(self.policy)


def _prefix(settings: Settings) -> str:
    return f"policies/{settings.model_name}/activations/"


def activation_keys(settings: Settings) -> list[str]:
    """Keys of every activation, oldest first (one LIST: what the API's refresh checks)."""
    return [key for key in blob_store(settings).list_keys(_prefix(settings)) if _SEQUENCE.search(key)]


def read_activation(settings: Settings, key: str) -> Activation:
    try:
        return Activation(**json.loads(blob_store(settings).get(key)))
    except (ValueError, TypeError) as error:
        raise StoreError(f"policy activation {key} is malformed: {error}") from error


def policy_history(settings: Settings, limit: int | None = None) -> list[Activation]:
    keys = activation_keys(settings)
    if limit is not None:
        keys = keys[-limit:] if limit > 0 else []
    return [read_activation(settings, key) for key in keys]


def active_policy(settings: Settings) -> Activation | None:
    keys = activation_keys(settings)
    return read_activation(settings, keys[-1]) if keys else None


def _commit(settings: Settings, activation: Activation) -> None:
    key = f"{_prefix(settings)}{activation.sequence:08d}.json"
    body = json.dumps(asdict(activation), indent=2, sort_keys=True).encode()
    if not blob_store(settings).create(key, body):
        raise PolicyChangeError(
            "another policy change was made at the same moment; nothing was changed: look at "
            "`fraudops policy history` and retry if still needed"
        )


def _replayed(history: list[Activation], idempotency_key: str | None) -> Activation | None:
    if idempotency_key is None:
        return None
    return next((a for a in history if a.idempotency_key == idempotency_key), None)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def publish_policy(
    settings: Settings,
    document: Any,
    reason: str,
    actor: str | None = None,
    expected_from: int | None = None,
    idempotency_key: str | None = None,
) -> Activation:
    """Validate ``document`` and make it the active policy, as a new version. Publishing the policy
    that is already active changes nothing (returned with action ``unchanged``)."""
    if not reason.strip():
        raise PolicyChangeError("publishing a policy needs a reason (--reason)")
    policy = DecisionPolicy.from_dict(document)  # PolicyError: nothing is written
    history = policy_history(settings)
    replayed = _replayed(history, idempotency_key)
    if replayed is not None:
        return replayed
    current = history[-1] if history else None
    if current is not None and current.sha256 == policy.sha256:
        return Activation(**{**asdict(current), "action": UNCHANGED})
    current_version = current.version if current else None
    active = BUILTIN_POLICY_VERSION if current_version is None else current_version
    if expected_from is not None and active != expected_from:
        raise PolicyChangeError(
            f"the active policy is {describe_version(active)}, not {version_name(expected_from)}; nothing was changed"
        )
    version = 1 + max((a.version for a in history), default=0)
    activation = Activation(
        sequence=(current.sequence + 1) if current else 1, version=version, action=PUBLISHED,
        from_version=current_version, sha256=policy.sha256, reason=reason, actor=actor or default_actor(),
        time=_now(), policy=policy.to_dict(), idempotency_key=idempotency_key,
    )  # fmt: skip
    _commit(settings, activation)
    return activation


def rollback_policy(
    settings: Settings,
    reason: str,
    expected_from: int,
    to_version: int | None = None,
    actor: str | None = None,
    idempotency_key: str | None = None,
) -> Activation:
    """Re-activate ``to_version`` (default: the version active before ``expected_from``; for the first
    published version, the built-in policy), only while ``expected_from`` is the active version: a
    retried or doubled rollback rolls back once. ``to_version`` ``BUILTIN_POLICY_VERSION`` (0)
    re-activates the built-in policy."""
    if not reason.strip():
        raise PolicyChangeError("a policy rollback needs a reason (--reason)")
    history = policy_history(settings)
    replayed = _replayed(history, idempotency_key)
    if replayed is not None:
        return replayed
    if not history:
        raise PolicyChangeError("no policy has been published: the built-in policy is active, nothing to roll back")
    current = history[-1]
    if current.version != expected_from:
        raise PolicyChangeError(
            f"the active policy is {describe_version(current.version)}, not {version_name(expected_from)} "
            "(already rolled back?); nothing was changed"
        )
    if to_version is None:
        if current.action == ROLLED_BACK:
            previous = version_name(current.from_version)
            raise PolicyChangeError(
                f"the last change already rolled {describe_version(current.from_version)} back to "
                f"{describe_version(current.version)}; rolling back again would restore it: say --to {previous} "
                "if that is what you want"
            )
        to_version = BUILTIN_POLICY_VERSION if current.from_version is None else current.from_version
    if to_version == current.version:
        raise PolicyChangeError(f"{describe_version(to_version)} is already active; nothing was changed")
    if to_version == BUILTIN_POLICY_VERSION:
        builtin = builtin_policy()
        document, sha256 = builtin.to_dict(), builtin.sha256
    else:
        target = next((a for a in reversed(history) if a.version == to_version), None)
        if target is None:
            raise PolicyChangeError(f"there is no policy version {to_version} (see `fraudops policy history`)")
        try:
            target.loaded()  # still valid under this code
        except PolicyError as error:
            raise PolicyChangeError(f"policy version {to_version} no longer validates: {error}") from error
        document, sha256 = target.policy, target.sha256
    activation = Activation(
        sequence=current.sequence + 1, version=to_version, action=ROLLED_BACK, from_version=current.version,
        sha256=sha256, reason=reason, actor=actor or default_actor(), time=_now(), policy=document,
        idempotency_key=idempotency_key,
    )  # fmt: skip
    _commit(settings, activation)
    return activation
