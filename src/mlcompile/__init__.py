"""mlcompile: compile one YAML spec into runnable ML pipelines for several orchestrators."""

__version__ = "0.1.0"
