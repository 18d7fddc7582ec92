//! The project as dbt docs and Dagster draw it: sources, seeds, models and data tests as nodes,
//! one edge per `ref`/`source` (and model → its tests), laid out in layers from left to right
//! (a node's layer is its longest path from a source) with each layer ordered to keep edges
//! short (barycenter sweeps). Plain data: the page only draws it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dbt::project::Project;
use crate::dbt::run::Dag;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Source,
    Seed,
    Model,
    Test,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// `source:raw.orders`, `seed:x`, `model:x`, `test:not_null_x_id`.
    pub id: String,
    pub kind: NodeKind,
    /// What the node is called: a model's or seed's name, `source.table`, a test's name.
    pub name: String,
    /// A model's materialization; a source's relation; a test's kind.
    pub detail: String,
    /// Built, not built yet, or the partitions' statuses counted.
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// `ref`, `source` or `test`.
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lineage {
    /// Sources first, then seeds and models in build order, then tests.
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

impl Lineage {
    /// The graph of `project` as `dag` compiled it; `status` says where a model or seed stands.
    pub fn of(project: &Project, dag: &Dag, status: impl Fn(&str) -> String) -> Lineage {
        let mut lineage = Lineage::default();
        let mut source_ids = BTreeMap::new();
        for source in &project.sources {
            for table in &source.tables {
                let id = format!("source:{}.{}", source.name, table.name);
                if let Some((relation, _)) = project.source_table(&source.name, &table.name) {
                    source_ids.insert(relation.clone(), id.clone());
                    let detail = relation.to_string();
                    lineage.nodes.push(Node { id, kind: NodeKind::Source, name: format!("{}.{}", source.name, table.name), detail, status: String::new() });
                }
            }
        }
        for name in dag.order() {
            let (kind, detail) = match dag.parsed(name) {
                Some(model) => (NodeKind::Model, format!("{:?}", model.config.materialized).to_lowercase()),
                None => (NodeKind::Seed, "seed".to_string()),
            };
            let id = node_id(kind, name);
            for parent in dag.parents(name) {
                let parent_kind = if dag.parsed(parent).is_some() { NodeKind::Model } else { NodeKind::Seed };
                lineage.edges.push(Edge { from: node_id(parent_kind, parent), to: id.clone(), kind: "ref".into() });
            }
            for relation in dag.parsed(name).map(|m| m.sources.as_slice()).unwrap_or_default() {
                if let Some(source) = source_ids.get(relation)
                    && !lineage.edges.iter().any(|e| e.from == *source && e.to == id)
                {
                    lineage.edges.push(Edge { from: source.clone(), to: id.clone(), kind: "source".into() });
                }
            }
            lineage.nodes.push(Node { id, kind, name: name.clone(), detail, status: status(name) });
        }
        for test in dag.tests() {
            let id = node_id(NodeKind::Test, &test.name);
            for parent in &test.refs {
                let parent_kind = if dag.parsed(parent).is_some() { NodeKind::Model } else { NodeKind::Seed };
                lineage.edges.push(Edge { from: node_id(parent_kind, parent), to: id.clone(), kind: "test".into() });
            }
            for source in test.sources.iter().filter_map(|relation| source_ids.get(relation)) {
                lineage.edges.push(Edge { from: source.clone(), to: id.clone(), kind: "test".into() });
            }
            let detail = test.test_name.clone().unwrap_or_else(|| "singular".to_string());
            lineage.nodes.push(Node { id, kind: NodeKind::Test, name: test.name.clone(), detail, status: String::new() });
        }
        lineage
    }

    /// The incremental models, in build order: what a partition run builds.
    pub fn incremental_models(&self) -> Vec<String> {
        self.nodes.iter().filter(|n| n.kind == NodeKind::Model && n.detail == "incremental").map(|n| n.name.clone()).collect()
    }
}

fn node_id(kind: NodeKind, name: &str) -> String {
    let prefix = match kind {
        NodeKind::Source => "source",
        NodeKind::Seed => "seed",
        NodeKind::Model => "model",
        NodeKind::Test => "test",
    };
    format!("{prefix}:{name}")
}

/// Where each node and edge is drawn, in the units of an SVG view box.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// (node index, x, y) of each node's top left corner.
    pub nodes: Vec<(usize, f64, f64)>,
    /// Each edge as an SVG path (a horizontal S-curve from the right of one node to the left
    /// of the other), by edge index.
    pub edges: Vec<(usize, String)>,
    pub width: f64,
    pub height: f64,
}

pub const NODE_WIDTH: f64 = 190.0;
pub const NODE_HEIGHT: f64 = 44.0;
const COLUMN_GAP: f64 = 70.0;
const ROW_GAP: f64 = 14.0;
const SWEEPS: usize = 4;

/// Layers from left to right, each ordered by the mean position of its neighbours in the
/// layer before (then after), a few sweeps each way.
pub fn layout(lineage: &Lineage) -> Layout {
    let index: BTreeMap<&str, usize> = lineage.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let edges: Vec<(usize, usize)> =
        lineage.edges.iter().filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?))).collect();
    // Nodes come in an order where every edge points forward (sources, build order, tests),
    // so one pass finds each node's longest path.
    let mut layer = vec![0usize; lineage.nodes.len()];
    for &(from, to) in &edges {
        layer[to] = layer[to].max(layer[from] + 1);
    }
    let layers = layer.iter().max().map_or(0, |l| l + 1);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (node, &l) in layer.iter().enumerate() {
        columns[l].push(node);
    }
    let (mut parents, mut children) = (vec![Vec::new(); lineage.nodes.len()], vec![Vec::new(); lineage.nodes.len()]);
    for &(from, to) in &edges {
        parents[to].push(from);
        children[from].push(to);
    }
    let mut row = vec![0.0; lineage.nodes.len()];
    let place = |columns: &Vec<Vec<usize>>, row: &mut Vec<f64>| {
        for column in columns {
            for (i, &node) in column.iter().enumerate() {
                row[node] = i as f64;
            }
        }
    };
    place(&columns, &mut row);
    for sweep in 0..SWEEPS * 2 {
        let downward = sweep % 2 == 0;
        let order: Vec<usize> = if downward { (1..layers).collect() } else { (0..layers.saturating_sub(1)).rev().collect() };
        let neighbours = if downward { &parents } else { &children };
        for l in order {
            let mut keyed: Vec<(f64, usize)> = columns[l]
                .iter()
                .map(|&node| {
                    let near = &neighbours[node];
                    let key = if near.is_empty() { row[node] } else { near.iter().map(|&n| row[n]).sum::<f64>() / near.len() as f64 };
                    (key, node)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            columns[l] = keyed.into_iter().map(|(_, node)| node).collect();
            place(&columns, &mut row);
        }
    }
    let tallest = columns.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let height = (tallest * (NODE_HEIGHT + ROW_GAP) - ROW_GAP).max(NODE_HEIGHT);
    let mut xy = vec![(0.0, 0.0); lineage.nodes.len()];
    for (l, column) in columns.iter().enumerate() {
        // Each column centred on the tallest one.
        let offset = (height - (column.len() as f64 * (NODE_HEIGHT + ROW_GAP) - ROW_GAP)) / 2.0;
        for (i, &node) in column.iter().enumerate() {
            xy[node] = (l as f64 * (NODE_WIDTH + COLUMN_GAP), offset + i as f64 * (NODE_HEIGHT + ROW_GAP));
        }
    }
    let edges = edges
        .iter()
        .enumerate()
        .map(|(i, &(from, to))| {
            let (x1, y1) = (xy[from].0 + NODE_WIDTH, xy[from].1 + NODE_HEIGHT / 2.0);
            let (x2, y2) = (xy[to].0, xy[to].1 + NODE_HEIGHT / 2.0);
            let bend = (x2 - x1) / 2.0;
            (i, format!("M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}", x1 + bend, x2 - bend))
        })
        .collect();
    Layout {
        nodes: xy.iter().enumerate().map(|(i, &(x, y))| (i, x, y)).collect(),
        edges,
        width: (layers.max(1) as f64) * (NODE_WIDTH + COLUMN_GAP) - COLUMN_GAP,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbt::project::ProjectFiles;
    use crate::dbt::template::CompileContext;

    /// A shop shaped like the course's project: two staged sources, a mart reading both and
    /// an incremental one reading one.
    fn shop() -> Lineage {
        let mut files = ProjectFiles::default();
        files.insert("dbt_project.yml", "name: shop\n");
        files.insert("models/sources.yml", "sources:\n  - name: raw\n    schema: main\n    tables:\n      - name: orders\n      - name: customers\n");
        files.insert("models/stg_orders.sql", "select * from {{ source('raw', 'orders') }}");
        files.insert("models/stg_customers.sql", "select * from {{ source('raw', 'customers') }}");
        files.insert("models/customer_metrics.sql", "select * from {{ ref('stg_orders') }} join {{ ref('stg_customers') }} using (id)");
        files.insert(
            "models/daily_orders.sql",
            "{{ config(materialized='incremental', unique_key='day') }} select day, count(*) as n from {{ ref('stg_orders') }} group by day",
        );
        let project = files.parse().unwrap_or_else(|e| panic!("{e}"));
        let dag = Dag::of(&project, &CompileContext { vars: project.vars.clone(), ..CompileContext::default() }).unwrap_or_else(|e| panic!("{e}"));
        Lineage::of(&project, &dag, |name| format!("status of {name}"))
    }

    #[test]
    fn the_graph_has_an_edge_per_ref_and_source() {
        let lineage = shop();
        let mut edges: Vec<String> =
            lineage.edges.iter().filter(|e| e.kind != "test").map(|e| format!("{} -> {}", e.from, e.to)).collect();
        edges.sort();
        assert_eq!(
            edges,
            [
                "model:stg_customers -> model:customer_metrics",
                "model:stg_orders -> model:customer_metrics",
                "model:stg_orders -> model:daily_orders",
                "source:raw.customers -> model:stg_customers",
                "source:raw.orders -> model:stg_orders",
            ]
        );
        let daily = lineage.nodes.iter().find(|n| n.id == "model:daily_orders");
        assert_eq!(daily.map(|n| (n.detail.as_str(), n.status.as_str())), Some(("incremental", "status of daily_orders")));
        assert_eq!(lineage.incremental_models(), ["daily_orders"]);
    }

    #[test]
    fn every_edge_points_right_and_nodes_do_not_overlap() {
        let lineage = shop();
        let layout = layout(&lineage);
        let at = |id: &str| {
            let i = lineage.nodes.iter().position(|n| n.id == id).unwrap_or_default();
            (layout.nodes[i].1, layout.nodes[i].2)
        };
        for edge in &lineage.edges {
            assert!(at(&edge.from).0 < at(&edge.to).0, "{} -> {}", edge.from, edge.to);
        }
        for (i, a) in layout.nodes.iter().enumerate() {
            for b in &layout.nodes[i + 1..] {
                let apart = (a.1 - b.1).abs() >= NODE_WIDTH || (a.2 - b.2).abs() >= NODE_HEIGHT;
                assert!(apart, "nodes {} and {} overlap", a.0, b.0);
            }
        }
        assert!(layout.nodes.iter().all(|n| n.1 + NODE_WIDTH <= layout.width && n.2 + NODE_HEIGHT <= layout.height));
    }

    #[test]
    fn sixty_models_lay_out_in_layers_without_overlaps() {
        // Ten staging models over two sources, then fifty marts each reading two earlier models.
        let node = |id: String| Node { id: id.clone(), kind: NodeKind::Model, name: id, detail: String::new(), status: String::new() };
        let edge = |from: usize, to: usize| Edge { from: format!("m{from}"), to: format!("m{to}"), kind: "ref".into() };
        let nodes: Vec<Node> = (0..62).map(|i| node(format!("m{i}"))).collect();
        let mut edges: Vec<Edge> = (2..12).map(|i| edge(i % 2, i)).collect();
        edges.extend((12..62).flat_map(|i| [edge(i - 10, i), edge(i * 7 % (i - 1), i)]));
        let lineage = Lineage { nodes, edges };
        let layout = layout(&lineage);
        for (i, a) in layout.nodes.iter().enumerate() {
            for b in &layout.nodes[i + 1..] {
                assert!((a.1 - b.1).abs() >= NODE_WIDTH || (a.2 - b.2).abs() >= NODE_HEIGHT, "nodes {} and {} overlap", a.0, b.0);
            }
        }
        let x = |id: &str| layout.nodes[id[1..].parse::<usize>().unwrap_or_default()].1;
        assert!(lineage.edges.iter().all(|e| x(&e.from) < x(&e.to)));
        assert_eq!(layout.edges.len(), lineage.edges.len());
    }

    #[test]
    fn barycenters_untangle_two_crossing_chains() {
        // a -> c and b -> d, with c listed before d's parent would cross without reordering.
        let node = |id: &str| Node { id: id.into(), kind: NodeKind::Model, name: id.into(), detail: String::new(), status: String::new() };
        let edge = |from: &str, to: &str| Edge { from: from.into(), to: to.into(), kind: "ref".into() };
        let lineage = Lineage { nodes: ["a", "b", "d", "c"].map(node).to_vec(), edges: vec![edge("a", "c"), edge("b", "d")] };
        let layout = layout(&lineage);
        let y = |i: usize| layout.nodes[i].2;
        assert!((y(0) < y(1)) == (y(3) < y(2)), "c sits level with a and d with b");
    }
}
