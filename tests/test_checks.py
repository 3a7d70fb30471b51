"""_checks.check_number: every real number type is accepted and comes back as a plain int or float."""

import fractions
import re

import numpy as np
import pytest
import torch

from siamese_lib._checks import check_number


@pytest.mark.parametrize("value", [32, np.int64(32), np.int32(32), np.uint8(32), torch.tensor(32).item()])
def test_integers_of_any_type_come_back_as_a_plain_int(value):
    result = check_number("batch_size", value, low=1, integer=True)
    assert type(result) is int and result == 32


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), np.float16(0.5),
                                   torch.tensor(0.5).item(), fractions.Fraction(1, 2)])
def test_reals_of_any_type_come_back_as_a_plain_float(value):
    result = check_number("margin", value, low=0, low_open=True)
    assert type(result) is float and result == 0.5


def test_integers_are_accepted_where_a_number_is_asked_for():
    for value in (2, np.int64(2)):
        result = check_number("degrees", value, low=0, high=180)
        assert type(result) is float and result == 2.0


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        (np.int64(0), dict(low=1, integer=True), "k must be an integer >= 1, got np.int64(0)"),
        (np.float32(0.5), dict(low=1, integer=True), "k must be an integer >= 1, got np.float32(0.5)"),
        (np.float64(3.0), dict(integer=True), "k must be an integer, got np.float64(3.0)"),
        (np.float32("nan"), dict(), "k must be a number, got np.float32(nan)"),
        (np.float64("inf"), dict(low=0), "k must be a number >= 0, got np.float64(inf)"),
        (np.float32(0.5), dict(low=0.5, low_open=True), "k must be a number > 0.5, got np.float32(0.5)"),
        (np.bool_(True), dict(integer=True), "k must be an integer, got np.True_"),
        (True, dict(integer=True), "k must be an integer, got True"),
        (False, dict(), "k must be a number, got False"),
        ("3", dict(integer=True), "k must be an integer, got '3'"),
        (torch.tensor(3.0), dict(integer=True), "k must be an integer, got tensor(3.)"),
        (torch.tensor([3, 4]), dict(integer=True), "k must be an integer, got tensor([3, 4])"),
        (torch.tensor(True), dict(), "k must be a number, got tensor(True)"),
        pytest.param(10**400, dict(), f"k must be a number, got {10**400}", id="int-beyond-float"),
        pytest.param(10**400, dict(high=100, integer=True), f"k must be an integer <= 100, got {10**400}",
                     id="huge-int-too-high"),
    ],
)
def test_bad_values_raise_a_value_error_naming_the_argument_and_the_value(value, kwargs, expected):
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        check_number("k", value, **kwargs)


def test_one_element_torch_tensors_give_their_number():
    assert check_number("k", torch.tensor(32), low=1, integer=True) == 32
    assert type(check_number("k", torch.tensor(32, dtype=torch.int16), integer=True)) is int
    assert check_number("lr", torch.tensor(0.5), low=0, low_open=True) == 0.5
    assert type(check_number("lr", torch.tensor([2]))) is float


def test_a_huge_integer_is_still_an_integer():
    assert check_number("seed", 10**400, low=0, integer=True) == 10**400


def test_value_checks_can_be_turned_off_for_a_block_and_come_back():
    import torch

    from siamese_lib._checks import check_embeddings, check_labels, value_checks

    nan = torch.tensor([[float("nan"), 1.0]])
    with value_checks(False):  # what training does on an accelerator: no read of tensor values
        assert check_embeddings("z", nan) is nan
        assert check_labels("y", torch.tensor([2]), 1, binary=True).tolist() == [2]
        with pytest.raises(ValueError, match="z must be 2-D"):  # shapes are still checked
            check_embeddings("z", torch.zeros(3))
    with pytest.raises(ValueError, match="z must be finite"):
        check_embeddings("z", nan)
    with pytest.raises(ValueError, match="y must contain only 0 and 1"):
        check_labels("y", torch.tensor([2]), 1, binary=True)
