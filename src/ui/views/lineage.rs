//! The project's lineage as a graph (dbt docs, Dagster's asset graph): sources, seeds, models
//! and tests as nodes with their materialization and status, an arrow per `ref`/`source`;
//! the container scrolls for large projects. A model opens in the editor on click or Enter.

use leptos::prelude::*;

use super::SessionRef;
use crate::dbt::lineage::{Lineage, NODE_HEIGHT, NODE_WIDTH, NodeKind, layout};

/// Characters of a name that fit a node; longer names are cut (the full one is its tooltip).
const NAME_CHARS: usize = 25;

#[component]
pub fn LineageGraph(session: SessionRef, selected: RwSignal<String>) -> impl IntoView {
    let lineage = session.with_value(|s| s.published.lineage);
    let graph = Memo::new(move |_| {
        let lineage: Lineage = lineage.get();
        let layout = layout(&lineage);
        (lineage, layout)
    });
    view! {
        <div class="lineage-graph" data-testid="project-panel-lineage">
            {move || {
                let (lineage, layout) = graph.get();
                let summary = format!(
                    "Lineage: {} nodes, {} edges",
                    lineage.nodes.len(),
                    lineage.edges.len()
                );
                view! {
                    <svg class="lineage-svg" width=layout.width + 8.0 height=layout.height + 8.0
                        viewBox=format!("-4 -4 {} {}", layout.width + 8.0, layout.height + 8.0) role="group" aria-label=summary>
                        <defs>
                            <marker id="lineage-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto">
                                <path d="M0,0 L8,4 L0,8 z" class="arrow" />
                            </marker>
                        </defs>
                        {layout.edges.into_iter().map(|(i, path)| {
                            let edge = &lineage.edges[i];
                            view! {
                                <path class=format!("edge {}", edge.kind) d=path marker-end="url(#lineage-arrow)" data-testid="lineage-edge"
                                    data-from=edge.from.clone() data-to=edge.to.clone() data-kind=edge.kind.clone() />
                            }
                        }).collect_view()}
                        {layout.nodes.into_iter().map(|(i, x, y)| {
                            let node = lineage.nodes[i].clone();
                            let kind = format!("{:?}", node.kind).to_lowercase();
                            let opens = node.kind == NodeKind::Model;
                            let name = node.name.clone();
                            let current = move || opens && selected.with(|s| *s == name);
                            let open = { let name = node.name.clone(); move || if opens { selected.set(name.clone()) } };
                            let open_on_key = open.clone();
                            let shown = if node.name.chars().count() > NAME_CHARS {
                                format!("{}…", node.name.chars().take(NAME_CHARS - 1).collect::<String>())
                            } else {
                                node.name.clone()
                            };
                            let detail = [node.detail.as_str(), node.status.as_str()].into_iter().filter(|t| !t.is_empty()).collect::<Vec<_>>().join(" · ");
                            // Its title is its name (SVG's own labelling), starting with the text shown.
                            let title = format!("{} {detail}, {kind}", node.name);
                            view! {
                                <g class=move || format!("node {kind}{}", if current() { " current" } else { "" })
                                    transform=format!("translate({x:.1},{y:.1})") data-testid="lineage-node" data-id=node.id.clone()
                                    role=opens.then_some("button") tabindex=opens.then_some("0")
                                    on:click=move |_| open()
                                    on:keydown=move |ev: web_sys::KeyboardEvent| if ev.key() == "Enter" || ev.key() == " " { ev.prevent_default(); open_on_key() }>
                                    <title>{title}</title>
                                    <rect width=NODE_WIDTH height=NODE_HEIGHT rx="6" />
                                    <text class="name" x="10" y="18">{shown}</text>
                                    <text class="detail" x="10" y="35">{detail.chars().take(34).collect::<String>()}</text>
                                </g>
                            }
                        }).collect_view()}
                    </svg>
                }
            }}
        </div>
    }
}
