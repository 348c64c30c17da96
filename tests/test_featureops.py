"""Every feature operation is declared once and covered by the spec, the plan and the runtime."""

from __future__ import annotations

import pytest

from mlcompile.featureops import OPS, PLAN_OPS, Reads
from mlcompile.runtime import features as runtime_features
from mlcompile.spec.checks.features import feature_inputs
from mlcompile.spec.models import FEATURE_OPS, Feature, _options_model

# One written example per operation; a new operation without one fails below.
EXAMPLES = {
    "column": {"column": "distance"},
    "expr": {"expr": "dep_time // 100 + distance"},
    "log": {"log": "distance"},
    "date_part": {"date_part": {"column": "time_hour", "part": "hour"}},
    "bucket": {"bucket": {"column": "distance", "bins": [500, 1000]}},
    "impute": {"impute": "dep_delay"},
    "encode": {"encode": "carrier"},
    "scale": {"scale": {"column": "distance", "method": "minmax"}},
    "custom": {"custom": "features:speed"},
}


def test_spec_plan_and_runtime_list_the_same_operations() -> None:
    spec_keys = [k for k in Feature.model_fields if k != "description"]
    assert list(FEATURE_OPS) == spec_keys == list(OPS)
    assert set(runtime_features.OPS) == set(PLAN_OPS)
    assert set(EXAMPLES) == set(OPS)


@pytest.mark.parametrize("op", list(OPS))
def test_each_operation_lowers_to_what_the_runtime_reads(op: str) -> None:
    feature = Feature.model_validate(EXAMPLES[op])
    assert feature.op == op
    params = feature.params()
    declared = OPS[op]
    if declared.reads is Reads.COLUMN:
        assert feature_inputs(feature) == [params["column"]]
    elif declared.reads is Reads.EXPR:
        assert feature_inputs(feature) == ["dep_time", "distance"]
    else:
        assert feature_inputs(feature) == [] and declared.value_key in params
    for key, default in declared.defaults.items():
        assert key in params
        options = _options_model(Feature.model_fields[op].annotation)
        assert options is not None and options.model_fields[key].default == default


def test_a_bare_column_gets_the_declared_defaults() -> None:
    assert Feature(impute="x").params() == {"column": "x", "strategy": "median", "value": None}
    assert Feature(encode="x").params() == {
        "column": "x",
        "method": "category",
        "max_categories": None,
    }
    assert Feature(scale="x").params() == {"column": "x", "method": "standard"}
    assert Feature(log="x").params() == {"column": "x"}
