"""Link tokens (SPEC §5): forgery, alteration, truncation and rotation."""

import logging
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invites.ids import invitation_id_for_ref, is_invitation_id, new_invitation_id
from invites.tokens import InvalidToken, TokenSigner

KEY_A = ("a", b"A" * 32)
KEY_B = ("b", b"B" * 32)
invitation_ids = st.builds(lambda _: new_invitation_id(), st.integers())
generations = st.integers(min_value=0, max_value=2**32 - 1)


@given(invitation_ids, generations)
def test_round_trip(invitation_id, generation):
    token = TokenSigner([KEY_A]).create(invitation_id, generation)
    link = TokenSigner([KEY_A]).verify(token)
    assert (link.invitation_id, link.generation, link.kid) == (invitation_id, generation, "a")
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)


@given(invitation_ids, generations, st.data())
def test_any_single_bit_change_is_rejected(invitation_id, generation, data):
    signer = TokenSigner([KEY_A])
    token = signer.create(invitation_id, generation)
    index = data.draw(st.integers(0, len(token) - 1))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(token[index])
    bit = data.draw(st.integers(0, 5))
    altered = token[:index] + alphabet[value ^ (1 << bit)] + token[index + 1 :]
    with pytest.raises(InvalidToken):
        signer.verify(altered)


@given(invitation_ids, st.data())
def test_any_truncation_or_extension_is_rejected(invitation_id, data):
    signer = TokenSigner([KEY_A])
    token = signer.create(invitation_id, 0)
    cut = data.draw(st.integers(0, len(token) - 1))
    with pytest.raises(InvalidToken):
        signer.verify(token[:cut])
    with pytest.raises(InvalidToken):
        signer.verify(token + data.draw(st.sampled_from(["A", "AA", "AAAA", "_"])))


@given(st.text(max_size=200))
@settings(max_examples=300)
def test_arbitrary_strings_never_verify_and_never_crash(text):
    with pytest.raises(InvalidToken):
        TokenSigner([KEY_A]).verify(text)


def test_tokens_of_an_old_key_verify_after_rotation_and_new_ones_use_the_new_key():
    invitation_id = new_invitation_id()
    old_token = TokenSigner([KEY_A]).create(invitation_id, 1)
    rotated = TokenSigner([KEY_B, KEY_A])
    assert rotated.verify(old_token).invitation_id == invitation_id
    new_token = rotated.create(invitation_id, 1)
    assert rotated.verify(new_token).kid == "b"
    with pytest.raises(InvalidToken):
        TokenSigner([KEY_A]).verify(new_token)  # an instance that lacks the new key refuses it


def test_a_key_dropped_from_the_ring_no_longer_verifies():
    token = TokenSigner([KEY_A]).create(new_invitation_id(), 0)
    with pytest.raises(InvalidToken):
        TokenSigner([KEY_B]).verify(token)


def test_same_kid_other_secret_is_rejected():
    token = TokenSigner([("a", os.urandom(32))]).create(new_invitation_id(), 0)
    with pytest.raises(InvalidToken):
        TokenSigner([KEY_A]).verify(token)


def test_generation_is_bound_into_the_mac():
    signer = TokenSigner([KEY_A])
    invitation_id = new_invitation_id()
    assert signer.create(invitation_id, 1) != signer.create(invitation_id, 2)
    assert signer.verify(signer.create(invitation_id, 2)).generation == 2


def test_ids_are_well_formed_and_refs_are_stable():
    assert is_invitation_id(new_invitation_id())
    assert invitation_id_for_ref("lead-42") == invitation_id_for_ref("lead-42")
    assert invitation_id_for_ref("lead-42") != invitation_id_for_ref("lead-43")
    assert is_invitation_id(invitation_id_for_ref("any ref at all ✓"))


def test_a_token_never_appears_in_log_lines(caplog):
    signer = TokenSigner([KEY_A])
    caplog.set_level(logging.DEBUG)
    token = signer.create(new_invitation_id(), 0)
    signer.verify(token)
    with pytest.raises(InvalidToken):
        signer.verify(token[:-2] + "AA")
    assert all(token not in record.getMessage() for record in caplog.records)
    assert token not in repr(InvalidToken("bad signature"))
