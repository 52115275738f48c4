"""Generated code for the ``ccs.v1`` protos. Never edit by hand: run ``python protos/generate.py``."""
