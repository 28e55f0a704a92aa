import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum.nl import bsn as stdnum_bsn

from prefetch.domain.bsn import Bsn, normalise_bsn, passes_eleven_check
from prefetch.errors import InvalidValueError

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


@given(nine_digits)
def test_eleven_check_agrees_with_stdnum(digits: str) -> None:
    assert passes_eleven_check(digits) == stdnum_bsn.is_valid(digits)


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_eight_digits_are_padded_like_stdnum(digits: str) -> None:
    assert normalise_bsn(digits) == stdnum_bsn.compact(digits)
    assert (passes_eleven_check(normalise_bsn(digits))) == stdnum_bsn.is_valid(digits)


def test_valid_bsn_and_separators() -> None:
    assert Bsn.parse("1234.56.782").value == "123456782"
    with pytest.raises(InvalidValueError):  # padded to 012345678, which fails the check
        Bsn.parse("12345678")
    assert Bsn.parse("10000008").value == "010000008"


@pytest.mark.parametrize("raw", ["123456789", "1234567", "1234567890", "12345678a", "000000000"])
def test_invalid_bsn_refused(raw: str) -> None:
    with pytest.raises(InvalidValueError):
        Bsn.parse(raw)


def test_bsn_never_shown_in_str_or_repr() -> None:
    bsn = Bsn.parse("123456782")
    assert "123456782" not in str(bsn)
    assert "123456782" not in repr(bsn)
    assert "123456782" not in f"{bsn!r} {bsn}"
    assert bsn.masked.endswith("782")


def test_error_messages_do_not_contain_the_number() -> None:
    with pytest.raises(InvalidValueError) as info:
        Bsn.parse("123456789")
    assert "123456789" not in str(info.value)
