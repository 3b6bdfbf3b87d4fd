"""Parameter models of the scikit-learn detectors (pydantic only: importing this never imports sklearn).

``adcore algos show sklearn:iforest`` reads these, so describing a detector stays cheap.
Defaults are scikit-learn's own; unset parameters are not passed, so scikit-learn's
defaults apply exactly as when it is called directly. Ranges and choices are those of the
estimators' ``_parameter_constraints`` (no narrower: a value scikit-learn accepts is never
refused), so a value out of range is refused before the fit with the parameter's name.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: scikit-learn's "an int in [1, inf)" and "a float in (0.0, 1.0]" (a count, or a share of the rows).
Count = Annotated[int, Field(ge=1)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class IsolationForestParams(_Params):
    n_estimators: int = Field(100, ge=1, description="Number of trees in the ensemble.")
    max_samples: Literal["auto"] | Count | Fraction = Field(
        "auto", description="Rows drawn to train each tree: 'auto' = min(256, n), an int, or a fraction."
    )
    max_features: int | Fraction = Field(
        1.0, description="Features drawn to train each tree: an int, or a fraction of the features."
    )
    bootstrap: bool = Field(False, description="Draw rows with replacement.")
    n_jobs: int | None = Field(None, description="Parallel jobs for fit and scoring (-1 = all cores).")
    random_state: int | None = Field(None, description="Seed (CLI --seed).")


class LocalOutlierFactorParams(_Params):
    n_neighbors: int = Field(20, ge=1, description="Neighbours used for the local density.")
    leaf_size: int = Field(30, ge=1, description="Leaf size of the ball/kd tree (speed only).")
    metric: str = Field("minkowski", description="Distance metric (any scikit-learn metric name).")
    p: float = Field(2.0, gt=0, description="Power of the Minkowski metric (2 = Euclidean, 1 = Manhattan).")
    n_jobs: int | None = Field(None, description="Parallel jobs for the neighbour search.")


class OneClassSVMParams(_Params):
    kernel: Literal["linear", "poly", "rbf", "sigmoid"] = Field("rbf", description="Kernel of the SVM.")
    degree: int = Field(3, ge=0, description="Degree of the 'poly' kernel.")
    gamma: Literal["scale", "auto"] | Annotated[float, Field(ge=0)] = Field(
        "scale", description="Kernel coefficient: 'scale' = 1 / (n_features * X.var()), 'auto', or a number."
    )
    coef0: float = Field(0.0, description="Independent term of the 'poly' and 'sigmoid' kernels.")
    tol: float = Field(1e-3, gt=0, description="Tolerance of the stopping criterion.")
    nu: float = Field(0.5, gt=0, le=1, description="Upper bound on the share of training errors, in (0, 1].")
    shrinking: bool = Field(True, description="Use the shrinking heuristic.")
    cache_size: float = Field(200.0, gt=0, description="Kernel cache size in MB.")
    max_iter: int = Field(-1, ge=-1, description="Iteration limit of the solver (-1 = none).")


class SGDOneClassSVMParams(_Params):
    nu: float = Field(0.5, gt=0, le=1, description="Upper bound on the share of training errors, in (0, 1].")
    n_components: int = Field(100, ge=1, description="Nystroem features approximating the kernel.")
    kernel: Literal[
        "rbf", "laplacian", "polynomial", "poly", "sigmoid", "cosine", "linear", "chi2", "additive_chi2"
    ] = Field("rbf", description="Kernel the Nystroem map approximates.")
    gamma: float | None = Field(
        None, ge=0, description="Kernel coefficient; None = 1 / n_features (Nystroem's default)."
    )
    fit_intercept: bool = Field(True, description="Estimate the offset.")
    max_iter: int = Field(1000, ge=1, description="Passes over the training data.")
    tol: float | None = Field(1e-3, ge=0, description="Stopping tolerance; None = run max_iter epochs.")
    shuffle: bool = Field(True, description="Shuffle the rows after each epoch.")
    learning_rate: Literal["constant", "optimal", "invscaling", "adaptive"] = Field(
        "optimal", description="Step-size schedule."
    )
    eta0: float = Field(0.0, ge=0, description="Initial step size for 'constant', 'invscaling', 'adaptive'.")
    power_t: float = Field(0.5, description="Exponent of the 'invscaling' schedule.")
    average: bool | Annotated[int, Field(gt=0)] = Field(
        False, description="Average the SGD weights (True, or from this step on)."
    )
    random_state: int | None = Field(None, description="Seed of Nystroem and SGD (CLI --seed).")


class EllipticEnvelopeParams(_Params):
    store_precision: bool = Field(True, description="Store the precision matrix.")
    assume_centered: bool = Field(
        False, description="Assume the data are centred (skip the location estimate)."
    )
    support_fraction: float | None = Field(
        None, gt=0, le=1, description="Share of rows in the MCD support; None = scikit-learn's minimum."
    )
    random_state: int | None = Field(None, description="Seed of the MCD search (CLI --seed).")
