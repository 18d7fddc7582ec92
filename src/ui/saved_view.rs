//! The page's view (partition selection, time-travel run, backfill policy, recent queries)
//! survives a reload: this browser keeps it beside the session, read back within its bounds.

use super::local_store;
use crate::course::share::View;
use crate::limits::Limit;

const KEY: &str = "backfill-view";

pub fn load() -> View {
    let mut view: View = local_store::get(KEY).and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default();
    view.queries.truncate(Limit::RecentQueries.max() as usize);
    view
}

pub fn save(view: &View) {
    if let Ok(text) = serde_json::to_string(view) {
        local_store::set(KEY, &text);
    }
}
