"""The runtime: what every plan node does, shared by every backend.

`mlcompile.runtime.steps.run_step` is the path-based entry point; the modules next to it hold
the pure functions (DataFrame in, DataFrame / model / metrics out). Importing the package
costs nothing until a step runs: the heavy libraries load with the modules that use them.
"""

import os

# LightGBM's OpenMP threads spin while they wait for work; on shared or busy cores that spin
# costs more than the extra thread gains (a 7 s training took 37-57 s on this project's CI
# machine under load, and 8-10 s with PASSIVE). It must be set before libgomp loads, which
# happens with the first `import lightgbm`, always below this package. A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Arrow's default mimalloc pool keeps the memory of every Parquet read and write a step did,
# so with two steps at once a run's peak held what earlier steps had freed: the system
# allocator cut a full flights run's peak by 12% at the same speed. Arrow reads this when
# pyarrow is first imported, which happens below this package. A user's own setting wins.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
