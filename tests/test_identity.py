"""IMEI check digits and the spreadsheet damage the importer must recognise."""

from hypothesis import given
from hypothesis import strategies as st

from mdm.enrol import identity

digits14 = st.text(alphabet="0123456789", min_size=14, max_size=14)


def test_known_imeis_from_3gpp_examples() -> None:
    assert identity.is_valid_imei("260531793113837")
    assert identity.is_valid_imei("490154203237518")
    assert not identity.is_valid_imei("260531793113838")
    assert not identity.is_valid_imei("490154203237516")


@given(digits14)
def test_appending_the_check_digit_makes_a_valid_imei(body: str) -> None:
    assert identity.is_valid_imei(body + str(identity.luhn_check_digit(body)))


@given(digits14, st.integers(0, 14), st.integers(1, 9))
def test_any_single_digit_change_is_caught(body: str, pos: int, delta: int) -> None:
    imei = body + str(identity.luhn_check_digit(body))
    changed = imei[:pos] + str((int(imei[pos]) + delta) % 10) + imei[pos + 1:]
    assert not identity.is_valid_imei(changed)


@given(st.text(max_size=20))
def test_imei_problem_agrees_with_validity(value: str) -> None:
    assert (identity.imei_problem(value) is None) == identity.is_valid_imei(value)


def test_spreadsheet_damage_is_named() -> None:
    exponent = identity.imei_problem("3.52549E+14")
    assert exponent and "exponent" in exponent[0]
    lost_zero = identity.imei_problem("12345678901237"[:14])
    assert lost_zero is not None
    valid_with_zero = "0" + "1234567890123"
    valid_with_zero += str(identity.luhn_check_digit(valid_with_zero))
    dropped = identity.imei_problem(valid_with_zero[1:])
    assert dropped and "leading zero" in dropped[0]
    imeisv = identity.imei_problem("3525490600000150")
    assert imeisv and "IMEISV" in imeisv[0]
    assert identity.imei_problem("35254906000001５") is not None  # a full-width digit


def test_serial_rules() -> None:
    assert identity.serial_problem("R58F41ABC12") is None
    assert identity.serial_problem("1.2345E+10") is not None
    assert identity.serial_problem("has space") is not None
    assert identity.serial_problem("") is not None
