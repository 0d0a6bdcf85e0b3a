//! Network namespaces owned by one test run: `netns_kit`'s, created with `ip netns add`,
//! removed on drop (also when a test panics, after killing what still runs inside). Every
//! name carries the run's prefix.

pub use netns_kit::Netns;

/// A prefix unique to this process and call, short enough for interface names (15 bytes)
/// to hold it plus a few characters: `tn<pid mod 100000><counter, base 36>`. Fabric-side
/// veth names are `<prefix>v<n>`.
pub fn run_prefix() -> String {
    netns_kit::short_unique("tn")
}
