"""Pickles hold architecture and state_dict bytes, never an nn.Module, and load without the GPU."""

from __future__ import annotations

import pickle
import pickletools
import warnings

import adcore
import numpy as np
import pytest
import torch
from torch_support import FAST

from adcore_torch.detectors import VAE, AutoEncoder, DeepSVDD, SequenceAutoEncoder
from adcore_torch.state import state_from_bytes, state_to_bytes

CLASSES = [AutoEncoder, VAE, DeepSVDD, SequenceAutoEncoder]


def pickled_globals(data: bytes) -> set[str]:
    """``module name`` of every class or function the pickle stream refers to."""
    found: set[str] = set()
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "GLOBAL":
            found.add(str(arg))
        elif opcode.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]} {strings[-1]}")
    return found


@pytest.fixture(scope="module")
def fitted() -> dict[type, object]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    return {cls: cls(random_state=0, **FAST).fit(X) for cls in CLASSES}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_pickle_holds_no_torch_classes_and_scores_the_same(cls, fitted) -> None:
    detector = fitted[cls]
    data = pickle.dumps(detector, protocol=5)
    refs = pickled_globals(data)
    assert not [r for r in refs if r.startswith("torch")], refs
    assert b"torch.nn" not in data
    restored = pickle.loads(data)
    X = np.random.default_rng(2).normal(size=(50, 4))
    np.testing.assert_array_equal(restored.decision_function(X), detector.decision_function(X))
    assert restored.history_ == detector.history_
    assert isinstance(restored.module_, torch.nn.Module)


def test_gpu_trained_state_loads_on_a_cpu_only_machine(fitted, monkeypatch) -> None:
    detector = fitted[AutoEncoder]
    state = detector.__getstate__()
    state["device_"] = "cuda:0"  # as pickled on a GPU machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = AutoEncoder.__new__(AutoEncoder)
    with pytest.warns(RuntimeWarning, match="trained on cuda:0.*CPU"):
        loaded.__setstate__(state)
    assert loaded.device_ == "cpu"
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    X = np.random.default_rng(3).normal(size=(20, 4))
    np.testing.assert_array_equal(loaded.decision_function(X), detector.decision_function(X))


def test_state_bytes_map_to_the_requested_device(fitted) -> None:
    module = fitted[DeepSVDD].module_
    blob = state_to_bytes(module.state_dict())
    state = state_from_bytes(blob, map_location="cpu")
    assert set(state) == set(module.state_dict())
    assert all(t.device.type == "cpu" for t in state.values())
    assert all(torch.equal(state[k], v) for k, v in module.state_dict().items())


def test_stored_through_the_registry_with_weights_and_history(tmp_path) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 3))
    model = adcore.fit(X, "torch:autoencoder", seed=0, store=str(tmp_path / "store"), **FAST)
    record = model.save("sensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a CPU-trained model loads on the CPU silently
        loaded = adcore.load_model(record.ref, store=str(tmp_path / "store"))
    new = rng.normal(size=(30, 3))
    np.testing.assert_array_equal(loaded.score(new).scores, model.score(new).scores)
    assert loaded.detector.estimator_.history_["epochs_run"] == 3
