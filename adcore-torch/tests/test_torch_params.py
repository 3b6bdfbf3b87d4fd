"""Parameters: validated against the pydantic models, with errors a person can act on."""

from __future__ import annotations

import adcore
import pytest
import torch
from adcore.errors import ParameterError
from torch_support import make_rows

from adcore_torch import params as P
from adcore_torch.detectors import VAE, AutoEncoder, DeepSVDD, SequenceAutoEncoder


@pytest.mark.parametrize(
    ("algo", "values", "where"),
    [
        ("torch:autoencoder", {"epochs": 0}, "epochs"),
        ("torch:autoencoder", {"hidden_sizes": []}, "hidden_sizes"),
        ("torch:autoencoder", {"hidden_sizes": [8, 0]}, "hidden_sizes"),
        ("torch:autoencoder", {"device": "gpu"}, "device"),
        ("torch:vae", {"score": "likelihood"}, "score"),
        ("torch:vae", {"latent_dim": 0}, "latent_dim"),
        ("torch:deepsvdd", {"eps": 0}, "eps"),
        ("torch:deepsvdd", {"validation_fraction": 1.0}, "validation_fraction"),
        ("torch:seq-autoencoder", {"window": 1}, "window"),
        ("torch:seq-autoencoder", {"architecture": "gru"}, "architecture"),
    ],
)
def test_bad_values_are_parameter_errors(algo: str, values: dict, where: str) -> None:
    with pytest.raises(ParameterError, match=where):
        adcore.create_detector(algo, **values)


def test_misspelled_parameter_names_the_close_match() -> None:
    with pytest.raises(ParameterError, match="did you mean 'epochs'"):
        adcore.create_detector("torch:autoencoder", epoch=3)


def test_values_are_coerced_like_the_cli_gives_them() -> None:
    from adcore.domain.params import parse_key_values

    model = adcore.Detector("torch:autoencoder").params_model()
    values = parse_key_values(["hidden_sizes=[16,4]", "device=cpu", "patience=null"], model)
    detector = adcore.create_detector("torch:autoencoder", **values)
    assert detector.validated_params() == {"hidden_sizes": (16, 4), "device": "cpu", "patience": None}


def test_direct_construction_checks_names_now_and_values_in_fit() -> None:
    rows = make_rows()
    with pytest.raises(TypeError, match="unexpected parameter"):
        AutoEncoder(epoch=3)
    detector = AutoEncoder(learning_rate=-1.0)  # stored unchanged, as scikit-learn does
    assert detector.learning_rate == -1.0
    with pytest.raises(ParameterError, match="learning_rate"):
        detector.fit(rows[0])


def test_get_params_lists_every_field_and_set_params_round_trips() -> None:
    for cls, model in (
        (AutoEncoder, P.AutoEncoderParams),
        (VAE, P.VAEParams),
        (DeepSVDD, P.DeepSVDDParams),
        (SequenceAutoEncoder, P.SequenceAutoEncoderParams),
    ):
        detector = cls(epochs=7)
        assert set(detector.get_params()) == set(model.model_fields)
        assert detector.set_params(epochs=9).get_params()["epochs"] == 9
        assert repr(cls(epochs=7)) == f"{cls.__name__}(epochs=7)"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_cuda_says_what_to_do() -> None:
    rows = make_rows()
    with pytest.raises(ParameterError, match=r"CUDA is not available.*device=cpu"):
        adcore.Detector("torch:autoencoder", device="cuda", verbose=False).fit(rows[0])


def test_params_module_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, adcore_torch.params, adcore_torch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
