"""Online serving of registered models: `mlcompile serve` and its prediction log.

Modules here import FastAPI, uvicorn and pandas at the top; only `mlcompile serve` imports
them, so the rest of the command line starts without them.
"""
