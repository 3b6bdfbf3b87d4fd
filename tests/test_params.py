from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from adcore.errors import ParameterError
from adcore.params import (
    describe_fields,
    json_schema,
    model_from_specs,
    parse_key_values,
    parse_numpydoc_params,
    specs_from_signature,
    validate_params,
)


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
