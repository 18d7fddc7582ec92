"""Dagster definitions for the exported dbt project, as the lesson writes them: the
incremental models are one daily-partitioned asset, run with --vars min_date / max_date set to
the partition's window; every other model is an unpartitioned asset.

    cd analytics && dbt deps && dbt parse          # writes target/manifest.json
    dagster dev -f orchestration/definitions.py    # or: dagster definitions validate -f ...
"""

import json
from pathlib import Path

from dagster import AssetExecutionContext, BackfillPolicy, DailyPartitionsDefinition, Definitions
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets

dbt_project = DbtProject(project_dir=Path(__file__).resolve().parent.parent / "analytics")
# profiles.yml sits in the project folder, where DbtProject looks by default.
dbt_resource = DbtCliResource(project_dir=dbt_project)

daily_partition = DailyPartitionsDefinition(start_date="{{START_DATE}}")

INCREMENTAL_SELECTOR = "config.materialized:incremental"


@dbt_assets(manifest=dbt_project.manifest_path, exclude=INCREMENTAL_SELECTOR)
def dbt_analytics(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    select=INCREMENTAL_SELECTOR,
    partitions_def=daily_partition,
    # What the page's backfill used; dagster-dbt's default for daily partitions is single_run().
    backfill_policy={{BACKFILL_POLICY}},
)
def incremental_dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    time_window = context.partition_time_window
    dbt_vars = {
        "min_date": time_window.start.strftime("%Y-%m-%d"),
        "max_date": time_window.end.strftime("%Y-%m-%d"),
    }
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()


defs = Definitions(
    assets=[dbt_analytics, incremental_dbt_models],
    resources={"dbt": dbt_resource},
)
