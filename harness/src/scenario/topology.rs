//! `topology = { ... }`: channels by shape, part of the scenario format (`file.rs` re-exports
//! it); expanded into named `[[channels]]` by `validate.rs` after the pairs are counted.

use schemars::JsonSchema;
use serde::Deserialize;

/// `topology = { shape = "line", nodes = [...], amount = N }`: channels by shape, each opened
/// by the earlier node of the pair: `line` a-b, b-c, ...; `star` the first node to each other;
/// `mesh` every pair.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyDecl {
    pub shape: Shape,
    pub nodes: Vec<String>,
    pub amount: u64,
}

/// Topology shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    Line,
    Star,
    Mesh,
}

impl Shape {
    /// The shape as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Line => "line",
            Shape::Star => "star",
            Shape::Mesh => "mesh",
        }
    }
}

/// How many (from, to) pairs [`shape_pairs`] makes over `n` nodes, without making them.
pub fn shape_pair_count(shape: Shape, n: usize) -> usize {
    match shape {
        Shape::Line | Shape::Star => n.saturating_sub(1),
        Shape::Mesh => n.saturating_mul(n.saturating_sub(1)) / 2,
    }
}

/// The (from, to) pairs of a shape over `nodes`.
pub fn shape_pairs(shape: Shape, nodes: &[String]) -> Vec<(String, String)> {
    match shape {
        Shape::Line => nodes
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect(),
        Shape::Star => nodes
            .iter()
            .skip(1)
            .map(|leaf| (nodes[0].clone(), leaf.clone()))
            .collect(),
        Shape::Mesh => nodes
            .iter()
            .enumerate()
            .flat_map(|(i, a)| nodes[i + 1..].iter().map(move |b| (a.clone(), b.clone())))
            .collect(),
    }
}
