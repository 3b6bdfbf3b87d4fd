from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from adcore.domain.params import (
    describe_fields,
    json_schema,
    model_from_specs,
    out_of_range_values,
    parse_key_values,
    parse_numpydoc_params,
    public_fields,
    specs_from_signature,
    validate_params,
)
from adcore.errors import ParameterError


class Example:
    """An example.

    Parameters
    ----------
    n_neighbors : int, default=5
        How many neighbours to use.
        Second line is dropped? no: same paragraph.
    method : str
        Which method.

    Attributes
    ----------
    fitted_ : bool
        Not a parameter.
    """

    def __init__(self, n_neighbors=5, method="fast", weight: float = 1.0, flag=None):
        pass


def test_numpydoc_parser_reads_parameters_only():
    docs = parse_numpydoc_params(Example.__doc__)
    assert docs["n_neighbors"].startswith("How many neighbours to use.")
    assert docs["method"] == "Which method."
    assert "fitted_" not in docs


def test_specs_from_signature_types_and_defaults():
    specs = {s["name"]: s for s in specs_from_signature(Example)}
    assert specs["n_neighbors"]["type"] == "int" and specs["n_neighbors"]["default"] == 5
    assert specs["method"]["type"] == "str"
    assert specs["weight"]["type"] == "float"
    assert specs["flag"]["type"] == "any" and specs["flag"]["default"] is None


def test_validation_coerces_and_rejects():
    model = model_from_specs("x:example", specs_from_signature(Example))
    assert validate_params("x:example", model, {"n_neighbors": "7"}) == {"n_neighbors": 7}
    assert validate_params("x:example", model, {}) == {}
    with pytest.raises(ParameterError, match=r"has no parameter 'n_neighbour'; did you mean 'n_neighbors'"):
        validate_params("x:example", model, {"n_neighbour": 3})
    with pytest.raises(ParameterError, match=r"parameter 'n_neighbors': .*integer.*got 'many'"):
        validate_params("x:example", model, {"n_neighbors": "many"})


def test_choices_and_bounds_from_specs():
    model = model_from_specs(
        "x:y",
        [
            {"name": "kernel", "type": "str", "default": "rbf", "choices": ["rbf", "linear"]},
            {"name": "nu", "type": "float", "default": 0.5, "gt": 0, "le": 1},
            {"name": "size", "type": ["int", "float"], "default": 1.0},
        ],
    )
    with pytest.raises(ParameterError, match="kernel"):
        validate_params("x:y", model, {"kernel": "poly"})
    with pytest.raises(ParameterError, match="nu"):
        validate_params("x:y", model, {"nu": 2})
    assert validate_params("x:y", model, {"size": 3}) == {"size": 3}
    schema = json_schema(model)
    assert schema["properties"]["kernel"]["enum"] == ["rbf", "linear"]
    assert [row["name"] for row in describe_fields(model)] == ["kernel", "nu", "size"]


def test_key_value_parsing_is_typed_by_schema():
    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str = "a"
        k: int = 1
        mode: Literal["x", "y"] = "x"

    parsed = parse_key_values(["name=10", "k=10", "mode=y", "other=[1, 2]", "flag=True"], Params)
    assert parsed == {"name": "10", "k": 10, "mode": "y", "other": [1, 2], "flag": True}
    with pytest.raises(ParameterError, match="KEY=VALUE"):
        parse_key_values(["novalue"])


COUNT_OR_FRACTION = {
    "name": "max_samples",
    "type": ["float", "int", "str"],
    "default": "auto",
    "choices": ["auto"],
    "bounds_by_type": {"int": {"ge": 2}, "float": {"gt": 0, "le": 1}},
}


def test_bounds_by_type_keep_a_count_and_a_fraction_apart():
    model = model_from_specs("x:y", [COUNT_OR_FRACTION])
    for value in ("auto", 2, 256, 0.5, 1.0):
        out = validate_params("x:y", model, {"max_samples": value})["max_samples"]
        assert out == value and type(out) is type(value)
    # 1 is a count below the bound, not the fraction 1.0; 2.0 is a fraction above it, not the count 2
    for value in (1, 2.0, 0, -0.5, "most"):
        with pytest.raises(ParameterError) as info:
            validate_params("x:y", model, {"max_samples": value})
        assert str(info.value) == (
            f"x:y: parameter 'max_samples': expected one of: auto; or int >= 2; or float in (0, 1] "
            f"(got {value!r})"
        )


def test_constraint_text_says_what_validation_refuses():
    model = model_from_specs(
        "x:y",
        [
            COUNT_OR_FRACTION,
            {"name": "k", "type": "int", "default": 5, "ge": 1},
            {"name": "c", "type": "float", "default": 0.1, "gt": 0, "le": 0.5},
            {"name": "method", "type": "str", "default": "mean", "choices": ["largest", "mean"]},
            {"name": "frac", "type": "float", "default": None, "gt": 0, "lt": 1},
            {"name": "free", "type": "float", "default": 1.0},
        ],
    )
    rows = {row["name"]: row for row in describe_fields(model)}
    assert {name: row["constraint"] for name, row in rows.items()} == {
        "max_samples": "one of: auto; or int >= 2; or float in (0, 1]",
        "k": ">= 1",
        "c": "in (0, 0.5]",
        "method": "one of: largest, mean",
        "frac": "in (0, 1)",
        "free": "",
    }
    assert rows["max_samples"]["type"] == "str | int | float"
    assert rows["method"]["type"] == "str" and rows["frac"]["type"] == "Optional[float]"


def test_out_of_range_values_are_just_outside_each_bound():
    model = model_from_specs(
        "x:y",
        [
            COUNT_OR_FRACTION,
            {"name": "k", "type": "int", "default": 5, "ge": 1},
            {"name": "c", "type": "float", "default": 0.1, "gt": 0, "le": 0.5},
            {"name": "free", "type": "float", "default": 1.0},
        ],
    )
    values = out_of_range_values(model)
    assert values == {
        "max_samples": ["__not_one_of_the_choices__", 1, -1e-06, 1.000001],
        "k": [0],
        "c": [0.0, 0.500001],
    }
    for name, bad in values.items():
        for value in bad:
            with pytest.raises(ParameterError):
                validate_params("x:y", model, {name: value})


def test_a_parameter_named_like_a_basemodel_attribute_keeps_its_name_without_a_warning():
    """PyOD's PCA has ``copy``: pydantic would warn that it shadows BaseModel.copy."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = model_from_specs(
            "x:y",
            [
                {"name": "copy", "type": "bool", "default": True},
                {"name": "json", "type": "int", "default": 1},
            ],
        )
        assert validate_params("x:y", model, {"copy": False, "json": "3"}) == {"copy": False, "json": 3}
        assert list(json_schema(model)["properties"]) == ["copy", "json"]
    assert [row["name"] for row in describe_fields(model)] == ["copy", "json"]
    assert list(public_fields(model)) == ["copy", "json"]
    assert parse_key_values(["copy=false"], model) == {"copy": False}
    with pytest.raises(ParameterError, match=r"has no parameter 'copy_'; did you mean 'copy'"):
        validate_params("x:y", model, {"copy_": True})


def test_choices_are_the_only_values_unless_strings_beside_other_types():
    model = model_from_specs(
        "x:y",
        [
            {"name": "k", "type": "int", "default": 2, "choices": [1, 2, 4]},
            {"name": "bandwidth", "type": "float", "default": 1.0, "choices": ["scott", "silverman"]},
        ],
    )
    with pytest.raises(ParameterError, match=r"'k'.*got 3"):
        validate_params("x:y", model, {"k": 3})
    assert validate_params("x:y", model, {"bandwidth": "scott"}) == {"bandwidth": "scott"}
    assert validate_params("x:y", model, {"bandwidth": 0.2}) == {"bandwidth": 0.2}
    with pytest.raises(ParameterError, match="expected one of: scott, silverman; or any float"):
        validate_params("x:y", model, {"bandwidth": "wide"})
