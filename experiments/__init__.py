"""Experiment scripts over :mod:`adain` and :mod:`mmd`: each is ``python -m experiments.<name>``."""
