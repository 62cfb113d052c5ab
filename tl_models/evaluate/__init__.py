"""Evaluation: top-1, top-5 and loss of a model on a dataset's held-out split (:func:`validate`, the
``tl-validate`` command), and the evaluation pass that training runs too (:func:`evaluate`)."""
from .loop import autocast, evaluate
from .validate import load_eval_model, validate

__all__ = ['autocast', 'evaluate', 'load_eval_model', 'validate']
