from __future__ import annotations

import hashlib

from mintlog.domain.keys import KEY_PREFIX, display_prefix, generate_api_key, hash_api_key, is_well_formed_key


def test_generated_keys_are_prefixed_unique_and_checksummed() -> None:
    keys = {generate_api_key().secret for _ in range(200)}
    assert len(keys) == 200
    for secret in keys:
        assert secret.startswith(KEY_PREFIX)
        assert is_well_formed_key(secret)


def test_only_the_hash_and_a_short_prefix_are_kept() -> None:
    key = generate_api_key()
    assert key.key_hash == hashlib.sha256(key.secret.encode()).hexdigest()
    assert key.key_hash == hash_api_key(key.secret)
    assert key.prefix == display_prefix(key.secret)
    assert len(key.prefix) == 12
    assert key.secret.startswith(key.prefix)


def test_a_mistyped_or_truncated_key_fails_the_checksum() -> None:
    secret = generate_api_key().secret
    flipped = secret[:10] + ("a" if secret[10] != "a" else "b") + secret[11:]
    assert not is_well_formed_key(flipped)
    assert not is_well_formed_key(secret[:-1])
    assert not is_well_formed_key("mlk_" + "!" * 38)
    assert not is_well_formed_key("")
    assert not is_well_formed_key("Bearer " + secret)
