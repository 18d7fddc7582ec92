//! One page of rows as a table, with a pager; sortable by a column when the caller keeps a sort.

use leptos::prelude::*;

use crate::view::protocol::TablePage;

#[component]
pub fn PagedTable(
    rows: TablePage,
    /// The page shown, from 0.
    page: RwSignal<usize>,
    size: usize,
    testid: &'static str,
    /// (column, descending), when the table sorts.
    #[prop(optional)]
    sort: Option<RwSignal<Option<(String, bool)>>>,
) -> impl IntoView {
    let pages = rows.total.div_ceil(size).max(1);
    let header = move |c: String| match sort {
        Some(sort) => {
            let label = match sort.get_untracked() {
                Some((s, desc)) if s == c => format!("{c} {}", if desc { "▼" } else { "▲" }),
                _ => c.clone(),
            };
            let click = move |_| {
                sort.update(|s| *s = Some(match s.take() { Some((col, desc)) if col == c => (col, !desc), _ => (c.clone(), false) }));
                page.set(0);
            };
            view! { <th><button class="sort" on:click=click>{label}</button></th> }.into_any()
        }
        None => view! { <th>{c}</th> }.into_any(),
    };
    view! {
        <div class="table-scroll" tabindex="0">
            <table class="data" data-testid=testid>
                <thead><tr>{rows.columns.into_iter().map(header).collect_view()}</tr></thead>
                <tbody>{rows.rows.into_iter().map(|row| view! {
                    <tr>{row.into_iter().map(|v| view! { <td>{v}</td> }).collect_view()}</tr>
                }).collect_view()}</tbody>
            </table>
        </div>
        <div class="pager">
            <button disabled=move || page.get() == 0 on:click=move |_| page.update(|p| *p = p.saturating_sub(1))>"‹ Previous"</button>
            <span>{format!("page {} of {pages} · {} rows", page.get_untracked() + 1, rows.total)}</span>
            <button disabled=move || { page.get() + 1 >= pages } on:click=move |_| page.update(|p| *p += 1)>"Next ›"</button>
        </div>
    }
}
