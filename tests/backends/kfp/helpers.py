"""The small project the KFP tests build and run, and reading the IR the KFP SDK compiles."""

import re
from typing import Any

import yaml

# The IR names the SDK that compiled it; golden files must not change with each kfp release.
SDK_VERSION = re.compile(r"^sdkVersion: kfp-.*$", re.MULTILINE)


def ir_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def golden_ir(text: str) -> str:
    return SDK_VERSION.sub("sdkVersion: kfp-VERSION", text)


# The flights example cut down to what one run needs: one binary model, 15 boosting rounds,
# a single gate and every kind of deploy (registry, batch scoring, KServe manifest).
MINI_SPEC = """\
name: mini
settings:
  seed: 13
sources:
  flights:
    path: data/flights.parquet
    schema: flights_raw
  training:
    sql: |
      SELECT *, CAST(dep_delay > 15 AS INTEGER) AS is_delayed
      FROM flights WHERE dep_delay IS NOT NULL
schemas:
  flights_raw:
    columns:
      month: {dtype: int, in_range: {min: 1, max: 12}}
      origin: {dtype: str, isin: [EWR, JFK, LGA]}
      distance: {dtype: int, gt: 0}
features:
  dep_hour: {expr: "sched_dep_time // 100"}
  log_distance: {log: distance}
  carrier_code: {encode: carrier}
  origin_code: {encode: origin}
models:
  delayed:
    task: binary
    data: training
    target: is_delayed
    features: [dep_hour, month, log_distance, carrier_code, origin_code]
    split: {method: time, column: time_hour}
    num_boost_round: 15
    early_stopping: null
    slices: [origin]
gates:
  delayed_quality:
    model: delayed
    checks:
      - roc_auc >= __BOUND__
deployments:
  delayed_registry: {kind: registry, model: delayed, alias: production}
  scores:
    kind: batch
    model: delayed
    source: training
    output: outputs/scores.parquet
    id_columns: [carrier, flight, time_hour]
  delayed_kserve:
    kind: kserve
    model: delayed
    namespace: mini
    storage_uri: s3://models/mini
"""
