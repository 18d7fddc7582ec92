//! The worker's snapshots as the views read them: a signal per part, set only when that part
//! changed. A partition run then re-renders what it changed (the calendar, the chart, the new
//! run), not every view: the whole page rendering again after each of a backfill's runs held
//! the main thread for ~56 ms a run.

use std::collections::BTreeMap;

use leptos::prelude::*;

use crate::course::lesson::StepOutcome;
use crate::dbt::history::RunRecord;
use crate::dbt::lineage::Lineage;
use crate::dbt::project::{Project, ProjectFiles};
use crate::orchestrate::actions::Action;
use crate::orchestrate::state::LoadedFile;
use crate::view::protocol::{Daily, PartitionCell, Snapshot};

#[derive(Clone, Copy)]
pub struct Published {
    pub partitions: RwSignal<Vec<PartitionCell>>,
    pub daily: RwSignal<Daily>,
    pub runs: RwSignal<Vec<RunRecord>>,
    pub files: RwSignal<Vec<LoadedFile>>,
    pub tables: RwSignal<BTreeMap<String, u64>>,
    pub lineage: RwSignal<Lineage>,
    pub unbuilt_months: RwSignal<Vec<String>>,
    pub lesson: RwSignal<Vec<StepOutcome>>,
    pub actions: RwSignal<Vec<Action>>,
    /// The project, parsed for the editor and lineage when its files change.
    pub project: RwSignal<Option<Project>>,
    project_files: RwSignal<ProjectFiles>,
}

impl Published {
    pub fn new() -> Published {
        Published {
            partitions: RwSignal::default(),
            daily: RwSignal::default(),
            runs: RwSignal::default(),
            files: RwSignal::default(),
            tables: RwSignal::default(),
            lineage: RwSignal::default(),
            unbuilt_months: RwSignal::default(),
            lesson: RwSignal::default(),
            actions: RwSignal::default(),
            project: RwSignal::new(None),
            project_files: RwSignal::default(),
        }
    }

    pub fn publish(&self, snapshot: Snapshot) {
        // Taken apart field by field, so a part added to the snapshot cannot go unpublished.
        let Snapshot { partitions, daily, runs, files, tables, project, lineage, unbuilt_months, lesson, actions } = snapshot;
        if set_if_changed(self.project_files, project) || self.project.with_untracked(Option::is_none) {
            self.project.set(self.project_files.with_untracked(|files| files.parse().ok()));
        }
        set_if_changed(self.partitions, partitions);
        set_if_changed(self.daily, daily);
        // The runs the page has not seen yet (see `Runs`).
        self.runs.maybe_update(|old| runs.apply(old));
        set_if_changed(self.files, files);
        set_if_changed(self.tables, tables);
        set_if_changed(self.lineage, lineage);
        set_if_changed(self.unbuilt_months, unbuilt_months);
        set_if_changed(self.lesson, lesson);
        set_if_changed(self.actions, actions);
    }
}

/// Sets `signal` to `value` unless it holds that already (a set notifies its readers even
/// then); whether it changed.
fn set_if_changed<T: PartialEq + Send + Sync + 'static>(signal: RwSignal<T>, value: T) -> bool {
    let changed = signal.with_untracked(|old| *old != value);
    if changed {
        signal.set(value);
    }
    changed
}
