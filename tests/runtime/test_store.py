"""The artifact store: an entry is published whole or not at all, whenever the process dies."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlcompile.runtime.artifacts import sha256_file
from mlcompile.runtime.store import Store

from .helpers import killed_at_each_boundary

KEY = "ab" + "0" * 62

# What the executor does for one step, in a process of its own: stage the outputs (each an
# artifact directory), commit the entry, then save the data file hashes. argv: store, data.
STEP = f"""
import sys
from pathlib import Path
from mlcompile.runtime.artifacts import write_files
from mlcompile.runtime.store import Store

store, data = Store(Path(sys.argv[1])), Path(sys.argv[2])
staged = store.staging()
write_files(staged / "dataset", {{"data.parquet": data.read_bytes(), "meta.json": b"{{}}"}})
write_files(staged / "report", {{"report.json": b'{{"passed": true}}'}})
store.commit({KEY!r}, staged, {{"node": "ingest:x", "kind": "ingest", "summary": {{"rows": 3}}}})
store.file_hash(data)
store.save_hashes()
"""


def test_a_commit_killed_at_any_write_boundary_leaves_a_whole_entry_or_none(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n3,4\n5,6\n")

    def fresh(n: int) -> list[str]:
        return [str(tmp_path / f"store-{n}"), str(data)]

    outcomes = []
    for _, (root, _data) in killed_at_each_boundary(STEP, fresh):
        store = Store(Path(root))
        entries = list((store.root / "entries").glob("*/*"))
        outcomes.append(store.has(KEY))
        if store.has(KEY):
            assert entries == [store.entry(KEY)]
            entry = store.entry(KEY)
            assert sorted(p.name for p in entry.iterdir()) == ["dataset", "entry.json", "report"]
            assert (entry / "dataset" / "data.parquet").read_bytes() == data.read_bytes()
            assert store.record(KEY)["summary"] == {"rows": 3}
        else:
            assert entries == [], f"a half-published entry: {entries}"
        # the next run starts by clearing what a killed one staged
        store.clean_staging()
        assert not (store.root / "staging").exists()
        assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []
        hashes = store.root / "file-hashes.json"
        if hashes.exists():
            assert json.loads(hashes.read_text())[str(data)]["sha256"] == sha256_file(data)
        shutil.rmtree(store.root)
    # the two outputs, the entry record, its rename, the hashes: killed before and after the
    # commit point alike
    assert len(outcomes) >= 4 and outcomes[0] is False and outcomes[-1] is True
