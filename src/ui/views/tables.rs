//! Any table, paged and sortable, downloadable as CSV or Parquet; and location_metrics' busiest
//! pickup zones as a bar chart.

use leptos::prelude::*;
use super::paged_table::PagedTable;
use super::{SessionRef, save_file};
use crate::view::protocol::TablePage;

const PAGE: usize = 25;

#[component]
pub fn Tables(session: SessionRef) -> impl IntoView {
    let tables = session.with_value(|s| s.published.tables);
    let table = RwSignal::new("main.location_metrics".to_string());
    // Read again when the table's rows may have changed, not after every run.
    let stamp = Memo::new(move |_| table.with(|name| tables.with(|t| t.get(name).copied())));
    let names = Memo::new(move |_| tables.with(|t| t.keys().cloned().collect::<Vec<_>>()));
    let sort = RwSignal::new(None::<(String, bool)>);
    let page = RwSignal::new(0usize);
    let data = RwSignal::new(None::<Result<TablePage, String>>);
    Effect::new(move |_| {
        let (name, order, offset) = (table.get(), sort.get(), page.get() * PAGE);
        stamp.track();
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let result = s.table_page(&name, order, offset, PAGE).await.map_err(|e| e.to_string());
            data.set(Some(result));
        });
    });
    let download = move |csv: bool| {
        let s = session.get_value();
        let name = table.get_untracked();
        leptos::task::spawn_local(async move {
            let Ok(bytes) = s.download(&name, csv).await else { return };
            let file = name.rsplit('.').next().unwrap_or("table").to_string();
            let (kind, ext) = if csv { ("text/csv", "csv") } else { ("application/vnd.apache.parquet", "parquet") };
            save_file(&format!("{file}.{ext}"), kind, &bytes);
        });
    };
    view! {
        <h2>"Tables"</h2>
        <div class="table-bar">
            <select aria-label="Table" on:change=move |ev| { table.set(event_target_value(&ev)); sort.set(None); page.set(0); }>
                {move || names.get().into_iter().map(|t| {
                    let selected = t == table.get_untracked();
                    view! { <option value=t.clone() selected=selected>{t.clone()}</option> }
                }).collect_view()}
            </select>
            <button on:click=move |_| download(true)>"Download CSV"</button>
            <button on:click=move |_| download(false)>"Download Parquet"</button>
        </div>
        {move || match data.get() {
            None => view! { <p class="note">"Loading…"</p> }.into_any(),
            Some(Err(e)) => view! { <p class="note">{e}</p> }.into_any(),
            Some(Ok(rows)) => view! { <PagedTable rows page size=PAGE testid="data-table" sort /> }.into_any(),
        }}
        <LocationChart session=session />
    }
}

/// The busiest pickup zones in location_metrics, as horizontal bars.
#[component]
fn LocationChart(session: SessionRef) -> impl IntoView {
    let tables = session.with_value(|s| s.published.tables);
    let stamp = Memo::new(move |_| tables.with(|t| t.get("main.location_metrics").copied()));
    let zones = RwSignal::new(Vec::<(String, f64)>::new());
    Effect::new(move |_| {
        stamp.track();
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let sql = "select coalesce(zone, 'Unknown') as zone, sum(trips) as trips from location_metrics group by all order by trips desc, zone limit 12";
            let Ok(serde_json::Value::Array(rows)) = s.query(sql).await else { return };
            let zone_trips = |row: &serde_json::Value| {
                let zone = row.get("zone").and_then(|z| z.as_str()).unwrap_or_default().to_string();
                (zone, row.get("trips").and_then(serde_json::Value::as_f64).unwrap_or(0.0))
            };
            zones.set(rows.iter().map(zone_trips).collect());
        });
    });
    view! {
        <h3 class="subhead">"location_metrics: busiest pickup zones"</h3>
        <svg class="zones" viewBox="0 0 600 300" role="img" aria-label="trips by pickup zone">
            {move || {
                let zones = zones.get();
                let max = zones.iter().map(|z| z.1).fold(0.0, f64::max).max(1.0);
                zones.into_iter().enumerate().map(|(i, (zone, trips))| {
                    let y = 4.0 + i as f64 * 24.0;
                    view! {
                        <text class="tick" x="0" y=y + 15.0>{zone.clone()}</text>
                        <rect class="zone-bar" x="220" y=y width=360.0 * trips / max height="18"><title>{format!("{zone}: {trips} trips")}</title></rect>
                        <text class="tick" x=224.0 + 360.0 * trips / max y=y + 14.0>{trips.to_string()}</text>
                    }
                }).collect_view()
            }}
        </svg>
    }
}
