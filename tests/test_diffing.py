"""Diffs of configuration files: changes visible, secret values never."""

from __future__ import annotations

import yaml

from hotconf.diffing import mask_line, masked_unified_diff, secret_values
from hotconf.secrets import MASK

BEFORE = b"""\
memory:
  redis:
    password: old-redis-pass  # rotated monthly
    port: 6379
backend:
  api_keys:
    - first-key-value
"""
AFTER = BEFORE.replace(b"old-redis-pass", b"new-redis-pass").replace(
    b"first-key-value", b"second-key-value").replace(b"6379", b"6380")


def known_secrets() -> list[str]:
    return secret_values(yaml.safe_load(BEFORE)) + secret_values(yaml.safe_load(AFTER))


def test_a_changed_secret_shows_as_changed_but_masked() -> None:
    diff = masked_unified_diff("config.yaml", BEFORE, AFTER, secrets=known_secrets())

    for value in ("old-redis-pass", "new-redis-pass", "first-key-value", "second-key-value"):
        assert value not in diff
    assert f"-    password: {MASK}  # rotated monthly\n" in diff
    assert f"+    password: {MASK}  # rotated monthly\n" in diff
    assert f"+    - {MASK}\n" in diff
    assert "-    port: 6379\n" in diff and "+    port: 6380\n" in diff


def test_headers_name_the_file_and_both_sides() -> None:
    diff = masked_unified_diff("config.yaml", BEFORE, AFTER, labels=("current", "after sync"))

    assert diff.startswith("--- config.yaml (current)\n+++ config.yaml (after sync)\n@@ -1,")


def test_equal_files_have_no_diff() -> None:
    assert masked_unified_diff("config.yaml", BEFORE, BEFORE) == ""


def test_json_pairs_keep_their_quotes_and_commas() -> None:
    assert mask_line('  "api_key": "sk-123",\n') == f'  "api_key": "{MASK}",\n'
    assert mask_line('  "port": 8001,\n') == '  "port": 8001,\n'


def test_secret_values_walks_lists_under_secret_keys() -> None:
    tree = {"a": {"token": "t0ken", "tokens": ["x1", "y2"], "plain": "visible"}}

    assert secret_values(tree) == ["t0ken", "x1", "y2"]


def test_a_password_inside_a_url_is_masked_whatever_the_key() -> None:
    before = b"ollama:\n  host: http://127.0.0.1:11434\n"
    after = b"ollama:\n  host: http://admin:hunter2pw@127.0.0.1:11434\n"

    diff = masked_unified_diff("config.yaml", before, after)

    assert "hunter2pw" not in diff
    assert f"+  host: http://admin:{MASK}@127.0.0.1:11434\n" in diff


def test_the_lines_that_continue_a_secret_value_are_masked() -> None:
    before = (b"security:\n  jwt_secret: |\n    first-line-of-it\n    second-line-of-it\n"
              b"  api_key: >-\n    folded-part-one\n    folded-part-two\n"
              b"  credentials:\n    user: al\n    pw: x1\n  password: \"multi\n    line-quoted\"\n"
              b"  allowed_hosts:\n    - localhost\n")
    after = before.replace(b"localhost", b"gui.example") + b"other: 1\n"
    known = secret_values(yaml.safe_load(before))

    diff = masked_unified_diff("config.yaml", before, after, secrets=known, context=20)

    for value in ("first-line", "second-line", "folded-part", "al\n", "x1", "line-quoted"):
        assert value not in diff
    assert f"   jwt_secret: {MASK}\n     {MASK}\n     {MASK}\n" in diff
    assert "   credentials:\n" in diff
    assert " allowed_hosts:\n-    - localhost\n+    - gui.example\n" in diff


def test_a_quoted_secret_with_a_hash_inside_is_masked_whole() -> None:
    assert mask_line('  password: "abc #def"  # note\n') == f"  password: {MASK}  # note\n"
    assert mask_line("  token: 'it''s #1'\n") == f"  token: {MASK}\n"
