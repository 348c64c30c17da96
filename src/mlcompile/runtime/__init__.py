"""The runtime: what every plan node does, shared by every backend.

`mlcompile.runtime.steps.run_step` is the path-based entry point; the modules next to it hold
the pure functions (DataFrame in, DataFrame / model / metrics out). Nothing is imported here,
so importing the package costs nothing until a step runs.
"""
