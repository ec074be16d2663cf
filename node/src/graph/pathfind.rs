//! Pathfinding: the cheapest route by fee, then by hops, within the payer's budgets.
//!
//! The search runs backwards from the payee (Dijkstra), as Lightning implementations do: the
//! amount and expiry a hop must receive depend on what it forwards, so they are known only
//! from the payee's end. Relaxing edge `u -> v` with `v` needing `amount` and `expiry`:
//! - the channel must be able to carry `amount` (`capacity`, or for our own channels what we
//!   can send now);
//! - `u` (unless it is the payer) charges `fee_for(u's fee_rate, amount)` and needs its
//!   `tlc_expiry_delta` more blocks;
//! - the route stays within `max_fee`, `max_expiry_delta` and [`MAX_HOPS`](crate::onion::MAX_HOPS).
//!
//! Pure: the caller builds the edges from the graph, its own channels and invoice hints, and
//! leaves out what it must avoid (disabled directions, channels that failed this payment).
//! Ties are broken by node key and channel id, so the same inputs give the same route.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use dlp_chain::{Hash32, Pubkey};

use super::fee_for;
use crate::onion::MAX_HOPS;

/// One usable direction of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edge {
    pub(crate) channel_id: Hash32,
    pub(crate) from: Pubkey,
    pub(crate) to: Pubkey,
    /// The most this direction can carry.
    pub(crate) capacity: u64,
    /// `from`'s fee, millionths of the forwarded amount.
    pub(crate) fee_rate: u64,
    /// `from`'s expiry delta.
    pub(crate) tlc_expiry_delta: u64,
}

/// What to route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteRequest {
    pub(crate) source: Pubkey,
    pub(crate) target: Pubkey,
    pub(crate) amount: u64,
    /// Blocks from now until the payee's TLC expires.
    pub(crate) final_expiry_delta: u64,
    /// Most fees the payer will pay in all.
    pub(crate) max_fee: u64,
    /// Most blocks from now until the first TLC expires.
    pub(crate) max_expiry_delta: u64,
}

/// One hop of a route: the TLC that `node` receives over `channel_id`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RouteHop {
    pub(crate) node: Pubkey,
    pub(crate) channel_id: Hash32,
    #[serde(with = "dlp_chain::hex_u64")]
    pub(crate) amount: u64,
    /// Blocks from the payment's start until this TLC expires.
    #[serde(with = "dlp_chain::hex_u64")]
    pub(crate) expiry_delta: u64,
}

/// A route from the payer: hop 0 is its peer, the last hop the payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) hops: Vec<RouteHop>,
    /// What the payer pays on top of the amount.
    pub(crate) fee: u64,
}

/// Why there is no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoRoute {
    #[error("cannot pay ourselves")]
    SelfPayment,
    #[error(
        "no route to {target} for {amount} (fee budget {max_fee}, expiry budget {max_expiry_delta} blocks, {edges} usable channel directions)"
    )]
    None {
        target: Pubkey,
        amount: u64,
        max_fee: u64,
        max_expiry_delta: u64,
        edges: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Label {
    fee: u64,
    hops: usize,
    /// Amount this node must receive.
    amount: u64,
    /// Blocks until the TLC this node receives expires.
    expiry: u64,
    /// Index of the edge this node sends over (towards the payee); none at the payee.
    via: Option<usize>,
}

/// The cheapest route, by fee then hops.
pub(crate) fn find_route(edges: &[Edge], request: &RouteRequest) -> Result<Route, NoRoute> {
    if request.source == request.target {
        return Err(NoRoute::SelfPayment);
    }
    let mut into: HashMap<Pubkey, Vec<usize>> = HashMap::new();
    for (i, edge) in edges.iter().enumerate() {
        into.entry(edge.to).or_default().push(i);
    }
    for list in into.values_mut() {
        list.sort_by_key(|i| (edges[*i].from, edges[*i].channel_id));
    }
    let mut labels: HashMap<Pubkey, Label> = HashMap::new();
    let mut done: std::collections::HashSet<Pubkey> = std::collections::HashSet::new();
    let mut queue = BinaryHeap::new();
    labels.insert(
        request.target,
        Label {
            fee: 0,
            hops: 0,
            amount: request.amount,
            expiry: request.final_expiry_delta,
            via: None,
        },
    );
    queue.push(Reverse((0u64, 0usize, request.target)));
    while let Some(Reverse((_, _, node))) = queue.pop() {
        if !done.insert(node) {
            continue;
        }
        if node == request.source {
            break;
        }
        let here = labels[&node];
        for &i in into.get(&node).map(Vec::as_slice).unwrap_or_default() {
            let edge = &edges[i];
            if done.contains(&edge.from) || edge.capacity < here.amount {
                continue;
            }
            let hops = here.hops + 1;
            if hops > MAX_HOPS {
                continue;
            }
            let (fee, amount, expiry) = if edge.from == request.source {
                (here.fee, here.amount, here.expiry)
            } else {
                let hop_fee = fee_for(edge.fee_rate, here.amount);
                (
                    here.fee.saturating_add(hop_fee),
                    here.amount.saturating_add(hop_fee),
                    here.expiry.saturating_add(edge.tlc_expiry_delta),
                )
            };
            if fee > request.max_fee || expiry > request.max_expiry_delta {
                continue;
            }
            let better = labels
                .get(&edge.from)
                .is_none_or(|l| (fee, hops) < (l.fee, l.hops));
            if better {
                labels.insert(
                    edge.from,
                    Label {
                        fee,
                        hops,
                        amount,
                        expiry,
                        via: Some(i),
                    },
                );
                queue.push(Reverse((fee, hops, edge.from)));
            }
        }
    }
    let none = || NoRoute::None {
        target: request.target,
        amount: request.amount,
        max_fee: request.max_fee,
        max_expiry_delta: request.max_expiry_delta,
        edges: edges.len(),
    };
    let start = labels
        .get(&request.source)
        .filter(|_| done.contains(&request.source))
        .ok_or_else(none)?;
    let mut hops = Vec::new();
    let mut via = start.via;
    while let Some(i) = via {
        let edge = &edges[i];
        let label = labels.get(&edge.to).ok_or_else(none)?;
        hops.push(RouteHop {
            node: edge.to,
            channel_id: edge.channel_id,
            amount: label.amount,
            expiry_delta: label.expiry,
        });
        via = label.via;
        if hops.len() > MAX_HOPS {
            return Err(none());
        }
    }
    Ok(Route {
        fee: start.fee,
        hops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> Pubkey {
        let mut k = [n; 33];
        k[0] = 2;
        Pubkey(k)
    }

    fn edge(from: u8, to: u8, id: u8, capacity: u64, fee_rate: u64) -> Edge {
        Edge {
            channel_id: Hash32([id; 32]),
            from: key(from),
            to: key(to),
            capacity,
            fee_rate,
            tlc_expiry_delta: 10,
        }
    }

    fn both(a: u8, b: u8, id: u8, capacity: u64, fee_rate: u64) -> [Edge; 2] {
        [
            edge(a, b, id, capacity, fee_rate),
            edge(b, a, id, capacity, fee_rate),
        ]
    }

    fn request(from: u8, to: u8, amount: u64) -> RouteRequest {
        RouteRequest {
            source: key(from),
            target: key(to),
            amount,
            final_expiry_delta: 20,
            max_fee: u64::MAX,
            max_expiry_delta: 2_000,
        }
    }

    fn nodes(route: &Route) -> Vec<u8> {
        route.hops.iter().map(|h| h.node.0[1]).collect()
    }

    #[test]
    fn a_line_of_four_routes_over_every_hop_with_fees_and_expiries_added_backwards() {
        // 1 - 2 - 3 - 4, each hop charging 1% (10,000 ppm).
        let edges: Vec<Edge> = [
            both(1, 2, 12, 10_000, 10_000),
            both(2, 3, 23, 10_000, 10_000),
            both(3, 4, 34, 10_000, 10_000),
        ]
        .concat();
        let route = find_route(&edges, &request(1, 4, 1_000)).expect("route");
        assert_eq!(nodes(&route), vec![2, 3, 4]);
        // 4 receives 1000 (expiry 20); 3 charges 10 (+10 blocks); 2 charges 10.1 -> 11.
        let amounts: Vec<u64> = route.hops.iter().map(|h| h.amount).collect();
        assert_eq!(amounts, vec![1_021, 1_010, 1_000]);
        let expiries: Vec<u64> = route.hops.iter().map(|h| h.expiry_delta).collect();
        assert_eq!(expiries, vec![40, 30, 20]);
        assert_eq!(route.fee, 21);
    }

    #[test]
    fn the_cheaper_path_wins_then_the_shorter_and_capacity_and_budgets_are_respected() {
        // 1 -> 4 directly via 5 (expensive) or via 2, 3 (free).
        let mut edges: Vec<Edge> = [
            both(1, 5, 15, 10_000, 0),
            both(5, 4, 54, 10_000, 50_000),
            both(1, 2, 12, 10_000, 0),
            both(2, 3, 23, 10_000, 0),
            both(3, 4, 34, 10_000, 0),
        ]
        .concat();
        assert_eq!(
            nodes(&find_route(&edges, &request(1, 4, 1_000)).expect("route")),
            vec![2, 3, 4]
        );
        // Same fee: fewer hops.
        edges.retain(|e| e.channel_id != Hash32([54; 32]));
        edges.extend(both(5, 4, 54, 10_000, 0));
        assert_eq!(
            nodes(&find_route(&edges, &request(1, 4, 1_000)).expect("route")),
            vec![5, 4]
        );
        // Too small to carry the amount: the long way.
        edges.retain(|e| e.channel_id != Hash32([54; 32]));
        edges.extend(both(5, 4, 54, 999, 0));
        assert_eq!(
            nodes(&find_route(&edges, &request(1, 4, 1_000)).expect("route")),
            vec![2, 3, 4]
        );
        // An expiry budget too short for two forwarding hops.
        let mut tight = request(1, 4, 1_000);
        tight.max_expiry_delta = 35;
        assert!(matches!(
            find_route(&edges, &tight),
            Err(NoRoute::None { .. })
        ));
        // A fee budget below the only route's fee.
        let priced: Vec<Edge> =
            [both(1, 2, 12, 10_000, 0), both(2, 3, 23, 10_000, 10_000)].concat();
        let mut cheap = request(1, 3, 1_000);
        cheap.max_fee = 9;
        assert!(find_route(&priced, &cheap).is_err());
        cheap.max_fee = 10;
        assert_eq!(find_route(&priced, &cheap).expect("route").fee, 10);
    }

    #[test]
    fn unreachable_targets_self_payments_and_over_long_lines_have_no_route() {
        let edges: Vec<Edge> = both(1, 2, 12, 10_000, 0).to_vec();
        assert!(find_route(&edges, &request(1, 3, 1)).is_err());
        assert_eq!(
            find_route(&edges, &request(1, 1, 1)),
            Err(NoRoute::SelfPayment)
        );
        // One-way: 2 -> 1 only.
        let one_way = vec![edge(2, 1, 12, 10_000, 0)];
        assert!(find_route(&one_way, &request(1, 2, 1)).is_err());
        // A line of MAX_HOPS + 2 nodes needs MAX_HOPS + 1 hops.
        let n = u8::try_from(MAX_HOPS + 2).expect("small");
        let line: Vec<Edge> = (1..n).flat_map(|i| both(i, i + 1, i, 10_000, 0)).collect();
        let mut far = request(1, n, 1);
        far.max_expiry_delta = u64::MAX;
        assert!(find_route(&line, &far).is_err());
        let near = RouteRequest {
            target: key(n - 1),
            ..far
        };
        assert_eq!(
            find_route(&line, &near).expect("route").hops.len(),
            MAX_HOPS
        );
    }
}
