"""mlcompile's ZenML backend: `mlcompile build --backend zenml` emits a ZenML pipeline module
(`pipeline.py`) and its run configuration (`run_config.yaml`); `mlcompile run --backend
zenml` runs them on ZenML's local orchestrator."""
