//! Any table, paged and sortable, downloadable as CSV or Parquet; and location_metrics' busiest
//! pickup zones as a bar chart.

use leptos::prelude::*;
use super::{SessionRef, save_file};
use crate::query::{cell, to_csv};
use crate::sample::{FileCompression, write_parquet};
use crate::warehouse::Table;

const PAGE: usize = 25;

#[derive(Debug, Clone, PartialEq)]
struct Page {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    total: usize,
}

#[component]
pub fn Tables(session: SessionRef) -> impl IntoView {
    let snapshot = session.with_value(|s| s.snapshot);
    let table = RwSignal::new("main.location_metrics".to_string());
    let sort = RwSignal::new(None::<(String, bool)>);
    let page = RwSignal::new(0usize);
    let data = RwSignal::new(None::<Result<Page, String>>);
    Effect::new(move |_| {
        let (name, order, offset) = (table.get(), sort.get(), page.get() * PAGE);
        snapshot.track();
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let order_by = order.map(|(c, desc)| format!(" order by \"{}\" {}", c.replace('"', "\"\""), if desc { "desc" } else { "asc" })).unwrap_or_default();
            let rows = s.query(&format!("select * from {name}{order_by} limit {PAGE} offset {offset}")).await;
            let total = s.query(&format!("select count(*) from {name}")).await;
            let result = match (rows, total) {
                (Ok(rows), Ok(total)) => Ok(page_of(&rows, &total)),
                (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
            };
            data.set(Some(result));
        });
    });
    let download = move |csv: bool| {
        let s = session.get_value();
        let name = table.get_untracked();
        leptos::task::spawn_local(async move {
            let Ok(all) = s.query(&format!("select * from {name}")).await else { return };
            let file = name.rsplit('.').next().unwrap_or("table").to_string();
            let (bytes, kind, ext) = if csv {
                (to_csv(&all).into_bytes(), "text/csv", "csv")
            } else {
                match write_parquet(&all.batches, FileCompression::Zstd) {
                    Ok(bytes) => (bytes, "application/vnd.apache.parquet", "parquet"),
                    Err(_) => return,
                }
            };
            save_file(&format!("{file}.{ext}"), kind, &bytes);
        });
    };
    view! {
        <h2>"Tables"</h2>
        <div class="table-bar">
            <select on:change=move |ev| { table.set(event_target_value(&ev)); sort.set(None); page.set(0); }>
                {move || snapshot.with(|s| s.tables.clone()).into_iter().map(|t| {
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
            Some(Ok(p)) => {
                let pages = p.total.div_ceil(PAGE).max(1);
                view! {
                    <div class="table-scroll">
                        <table class="data" data-testid="data-table">
                            <thead><tr>{p.columns.iter().cloned().map(|c| {
                                let label = match sort.get_untracked() {
                                    Some((s, desc)) if s == c => format!("{c} {}", if desc { "▼" } else { "▲" }),
                                    _ => c.clone(),
                                };
                                view! { <th><button class="sort" on:click=move |_| {
                                    sort.update(|s| *s = Some(match s.take() { Some((col, desc)) if col == c => (col, !desc), _ => (c.clone(), false) }));
                                    page.set(0);
                                }>{label}</button></th> }
                            }).collect_view()}</tr></thead>
                            <tbody>{p.rows.into_iter().map(|row| view! {
                                <tr>{row.into_iter().map(|v| view! { <td>{v}</td> }).collect_view()}</tr>
                            }).collect_view()}</tbody>
                        </table>
                    </div>
                    <div class="pager">
                        <button disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"‹ Previous"</button>
                        <span>{format!("page {} of {pages} · {} rows", page.get_untracked() + 1, p.total)}</span>
                        <button disabled=move || { page.get() + 1 >= pages } on:click=move |_| page.update(|p| *p += 1)>"Next ›"</button>
                    </div>
                }.into_any()
            }
        }}
        <LocationChart session=session />
    }
}

/// The busiest pickup zones in location_metrics, as horizontal bars.
#[component]
fn LocationChart(session: SessionRef) -> impl IntoView {
    let snapshot = session.with_value(|s| s.snapshot);
    let zones = RwSignal::new(Vec::<(String, f64)>::new());
    Effect::new(move |_| {
        snapshot.track();
        let s = session.get_value();
        leptos::task::spawn_local(async move {
            let sql = "select coalesce(zone, 'Unknown') as zone, sum(trips) as trips from location_metrics group by all order by trips desc, zone limit 12";
            let Ok(table) = s.query(sql).await else { return };
            let mut out = Vec::new();
            for batch in table.batches.iter() {
                for row in 0..batch.num_rows() {
                    let trips = cell(batch, 1, row).and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    out.push((cell(batch, 0, row).unwrap_or_default(), trips));
                }
            }
            zones.set(out);
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

fn page_of(rows: &Table, total: &Table) -> Page {
    let columns = rows.schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
    let mut out = Vec::new();
    for batch in rows.batches.iter() {
        for row in 0..batch.num_rows() {
            out.push((0..columns.len()).map(|c| cell(batch, c, row).unwrap_or_else(|| "NULL".into())).collect());
        }
    }
    let total = total.batches.first().and_then(|b| cell(b, 0, 0)).and_then(|v| v.parse().ok()).unwrap_or(0);
    Page { columns, rows: out, total }
}
