"""Utilities of the Keras-like API: ``utils.gradient_check(model, X, Y)``."""

from ._model_check import ModelCheckResult, ParameterCheck, gradient_check

__all__ = ["ModelCheckResult", "ParameterCheck", "gradient_check"]
