"""txtheory.page: the tables and numbers the chapters print."""
import math

import numpy as np
import pytest

from txtheory import page


def test_markdown_table_formats_numbers_and_keeps_exponents_unbreakable():
    table = page.markdown_table(["name", "value"], [("a|b", 1.7e-39), ("c", np.float64(2.5))], fmt="{:.1e}")
    lines = table.data.split("\n")
    assert lines[0] == "| name | value |" and lines[1] == "|---|---|"
    assert lines[2] == "| a\\|b | 1.7e\u221239 |"  # pipes escaped, a minus sign, not a hyphen
    assert lines[3] == "| c | 2.5e+00 |"


def test_markdown_table_rejects_a_row_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 entries"):
        page.markdown_table(["a", "b"], [(1.0,)])


@pytest.mark.parametrize("x, text", [(0.5, "0.5"), (123.456, "123"), (1.5e-5, "1.5e-05"), (2e3, "2.0e+03"),
                                     (0.0, "0"), (math.inf, "inf")])
def test_num_gives_three_digits_and_scientific_notation_far_from_one(x, text):
    assert page.num(x) == text


def test_grid_places_each_row_in_its_cell_and_refuses_two_for_one():
    import numpy as np

    from txtheory import page

    rows = [{"H": 4, "m": 16, "v": 1.0}, {"H": 1, "m": 16, "v": 2.0}, {"H": 4, "m": 4, "v": 3.0}]
    ys, xs, table = page.grid(rows, "H", "m", "v")
    assert ys == [1, 4] and xs == [4, 16]
    assert np.isnan(table[0, 0]) and table[0, 1] == 2.0 and table[1, 0] == 3.0 and table[1, 1] == 1.0
    with pytest.raises(ValueError, match="two rows"):
        page.grid(rows + [{"H": 1, "m": 16, "v": 5.0}], "H", "m", "v")
