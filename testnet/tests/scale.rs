//! Needs root. `testnet scale` at a size CI affords (3 nodes, then 3 nodes and a route
//! reflector): every measurement is taken, the pods land alternately in existing and new
//! /31 blocks as the mode plans, each new block reaches every other node, and a bgpd
//! restart loses no route in any kernel (graceful restart).

use std::time::Duration;

use testnet::scale::{Options, run};

#[test]
fn scale_mode_measures_every_event_in_mesh_and_with_a_route_reflector() {
    for route_reflectors in [0, 1] {
        let o = Options {
            nodes: 3,
            route_reflectors,
            samples: 3,
            pods_on_one_node: 4,
        };
        let r = run(&o).unwrap_or_else(|e| panic!("{route_reflectors} reflectors: {e:#}"));
        assert_eq!(r.new_block.len(), 3, "{r:?}");
        assert_eq!(r.existing_block.len(), 3, "{r:?}");
        let all = [r.ready, r.join, r.restart]
            .into_iter()
            .chain(r.new_block.iter().copied())
            .chain(r.existing_block.iter().copied());
        for d in all {
            assert!(d > Duration::ZERO && d < Duration::from_secs(60), "{r:?}");
        }
        assert_eq!(r.restart_routes_lost, 0, "{r:?}");
        // The nodes, the one that joined, the reflectors: felix and bgpd each.
        assert_eq!(r.idle_kib.len(), 3 + 1 + route_reflectors, "{r:?}");
        assert!(r.idle_kib.iter().all(|&k| k > 1024), "{r:?}");
        assert!(r.with_pods_kib > 1024, "{r:?}");
    }
}
