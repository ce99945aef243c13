"""Publishing and rolling back decision policies, on the local store and on S3 (moto): one conditional
write per change, retries that change nothing twice, history in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fraudops.core.config import Settings
from fraudops.decisions import (
    PolicyChangeError,
    PolicyError,
    active_policy,
    policy_history,
    publish_policy,
    rollback_policy,
)
from fraudops.decisions.store import Activation, _commit
from fraudops.store import blob_store, ensure_bucket


def document(review_at: float, name: str = "p") -> dict[str, Any]:
    return {"name": name, "bands": {"review_at": review_at, "block_at": 0.95},
            "rules": [{"name": "big", "when": "amount > 1000000", "outcome": "review"}]}  # fmt: skip


@pytest.fixture(params=["local", "s3"])
def store_settings(request: pytest.FixtureRequest) -> Settings:
    if request.param == "local":  # one of the two only: each makes its own lake in the test's folder
        local: Settings = request.getfixturevalue("local_settings")
        return local
    s3: Settings = request.getfixturevalue("settings")
    ensure_bucket(s3)
    return s3


def test_publish_rollback_and_history(store_settings: Settings) -> None:
    assert active_policy(store_settings) is None
    first = publish_policy(store_settings, document(0.3), "first policy", actor="ana")
    second = publish_policy(store_settings, document(0.5), "fewer alerts", actor="ana")
    assert (first.version, second.version, second.from_version) == (1, 2, 1)
    back = rollback_policy(store_settings, "too many misses", expected_from=2, actor="bo")
    assert (back.action, back.version, back.from_version) == ("rolled_back", 1, 2)
    active = active_policy(store_settings)
    assert active is not None and active.version == 1 and active.loaded().bands.review_at == 0.3  # type: ignore[union-attr]
    history = [(a.sequence, a.action, a.from_version, a.version, a.reason) for a in policy_history(store_settings)]
    assert history == [
        (1, "published", None, 1, "first policy"),
        (2, "published", 1, 2, "fewer alerts"),
        (3, "rolled_back", 2, 1, "too many misses"),
    ]
    third = publish_policy(store_settings, document(0.4), "new version number after a rollback")
    assert third.version == 3


def test_a_retried_publish_or_rollback_changes_nothing_twice(store_settings: Settings) -> None:
    publish_policy(store_settings, document(0.3), "v1")
    publish_policy(store_settings, document(0.5), "v2")
    again = publish_policy(store_settings, document(0.5), "v2 (retry)")
    assert again.action == "unchanged" and again.version == 2
    rollback_policy(store_settings, "bad", expected_from=2)
    with pytest.raises(PolicyChangeError, match="active policy is version 1, not 2"):
        rollback_policy(store_settings, "bad (retry)", expected_from=2)
    with pytest.raises(PolicyChangeError, match="would restore it"):
        rollback_policy(store_settings, "rolling back the rollback", expected_from=1)
    assert [a.sequence for a in policy_history(store_settings)] == [1, 2, 3]
    assert rollback_policy(store_settings, "on purpose", expected_from=1, to_version=2).version == 2


def test_an_idempotency_key_makes_a_retry_report_the_first_attempt(store_settings: Settings) -> None:
    publish_policy(store_settings, document(0.3), "v1")
    first = publish_policy(store_settings, document(0.5), "v2", idempotency_key="change-42")
    publish_policy(store_settings, document(0.7), "v3 by someone else")
    again = publish_policy(store_settings, document(0.5), "v2 (retry)", idempotency_key="change-42")
    assert again == first and len(policy_history(store_settings)) == 3
    back = rollback_policy(store_settings, "v3 is bad", expected_from=3, idempotency_key="rb-1")
    assert rollback_policy(store_settings, "v3 is bad (retry)", expected_from=3, idempotency_key="rb-1") == back
    assert active_policy(store_settings).version == 2  # type: ignore[union-attr]


def test_an_invalid_policy_is_never_written(store_settings: Settings) -> None:
    with pytest.raises(PolicyError, match="unknown name 'amt'"):
        publish_policy(store_settings, {"name": "x", "rules": [{"name": "r", "when": "amt > 1", "outcome": "block"}]},
                       "typo")  # fmt: skip
    assert policy_history(store_settings) == []
    with pytest.raises(PolicyChangeError, match="needs a reason"):
        publish_policy(store_settings, document(0.3), "  ")


def test_two_changes_racing_for_one_sequence_number_one_wins(store_settings: Settings) -> None:
    published = publish_policy(store_settings, document(0.3), "v1")
    racer = Activation(**{**published.__dict__, "reason": "the other writer"})
    with pytest.raises(PolicyChangeError, match="at the same moment; nothing was changed"):
        _commit(store_settings, racer)
    assert [a.reason for a in policy_history(store_settings)] == ["v1"]
    assert blob_store(store_settings).create("policies/x.json", b"1") is True
    assert blob_store(store_settings).create("policies/x.json", b"2") is False
    assert blob_store(store_settings).get("policies/x.json") == b"1"


def test_rollback_needs_something_to_roll_back_to(store_settings: Settings) -> None:
    with pytest.raises(PolicyChangeError, match="no policy has been published"):
        rollback_policy(store_settings, "why", expected_from=1)
    publish_policy(store_settings, document(0.3), "v1")
    with pytest.raises(PolicyChangeError, match="no policy version 9"):
        rollback_policy(store_settings, "why", expected_from=1, to_version=9)
    # the version before the first is the built-in policy (issue 27: it used to be refused)
    assert rollback_policy(store_settings, "why", expected_from=1).summary()["version"] == "builtin"
    with pytest.raises(PolicyChangeError, match="the built-in policy is already active"):
        rollback_policy(store_settings, "why", expected_from=0, to_version=0)


def test_the_cli_publishes_rolls_back_and_refuses_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudops_dev.cli import main

    monkeypatch.setenv("FRAUDOPS_STATE_DIR", str(tmp_path / "state"))
    first, second, bad = tmp_path / "p1.json", tmp_path / "p2.json", tmp_path / "bad.json"
    first.write_text(json.dumps(document(0.3)))
    second.write_text(json.dumps(document(0.6)))
    bad.write_text(json.dumps({"name": "x", "rules": [{"name": "r", "when": "amount >", "outcome": "block"}]}))
    assert main(["policy", "validate", str(first)]) == 0
    assert main(["policy", "publish", str(first), "--reason", "v1"]) == 0
    assert main(["policy", "publish", str(second), "--reason", "v2"]) == 0
    capsys.readouterr()
    assert main(["policy", "publish", str(bad), "--reason", "typo"]) == 2
    assert "rules[0].when: expected a value" in capsys.readouterr().err
    assert main(["policy", "rollback", "--from", "2", "--reason", "bad"]) == 0
    assert main(["policy", "rollback", "--from", "2", "--reason", "bad (retry)"]) == 2
    assert "not 2 (already rolled back?)" in capsys.readouterr().err
    assert main(["policy", "history", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(h["action"], h["version"]) for h in history] == [("published", 1), ("published", 2), ("rolled_back", 1)]
    assert main(["policy", "show"]) == 0
    assert json.loads(capsys.readouterr().out)["policy"]["bands"]["review_at"] == 0.3


def test_the_cli_rolls_back_to_the_built_in_policy_and_says_what_was_active(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudops_dev.cli import main

    from fraudops.decisions import builtin_policy

    monkeypatch.setenv("FRAUDOPS_STATE_DIR", str(tmp_path / "state"))
    first, second = tmp_path / "p1.json", tmp_path / "p2.json"
    first.write_text(json.dumps(document(0.3)))
    second.write_text(json.dumps(document(0.6)))
    assert main(["policy", "publish", str(first), "--reason", "v1"]) == 0
    err = capsys.readouterr().err
    assert "(was the built-in policy)" in err and "None" not in err
    # the only published version rolls back to the built-in policy
    assert main(["policy", "rollback", "--from", "1", "--reason", "start over"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["version"] == "builtin" and "built-in policy" in err and "(was version 1)" in err
    assert main(["policy", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == "builtin" and shown["policy"] == builtin_policy().to_dict()
    assert main(["policy", "publish", str(second), "--reason", "v2", "--from", "builtin"]) == 0
    assert "policy version 2 is active (was the built-in policy)" in capsys.readouterr().err
    # an explicit --to builtin from any version, refused once it is done (a retry changes nothing)
    assert main(["policy", "rollback", "--from", "2", "--to", "builtin", "--reason", "incident"]) == 0
    assert main(["policy", "rollback", "--from", "2", "--to", "builtin", "--reason", "incident (retry)"]) == 2
    assert "the active policy is the built-in policy, not 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["policy", "rollback", "--from", "builtin", "--to", "nope", "--reason", "x"])
    assert usage.value.code == 2
    assert "'nope' is not a policy version" in capsys.readouterr().err
    assert main(["policy", "history", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [(h["action"], h["from_version"], h["version"]) for h in history] == [
        ("published", None, 1), ("rolled_back", 1, "builtin"), ("published", "builtin", 2),
        ("rolled_back", 2, "builtin"),
    ]  # fmt: skip
    assert main(["policy", "history"]) == 0
    assert "builtin" in capsys.readouterr().out
    assert [a.version for a in policy_history(Settings())] == [1, 0, 2, 0]
