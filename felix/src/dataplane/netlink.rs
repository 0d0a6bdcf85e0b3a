//! Shared rtnetlink plumbing of the dataplane: one connection per dataplane and
//! link name lookups, from `kernel_routes` (which also reads the kernel's
//! answers: `kernel_routes::errno`).

pub use config::validate::valid_ifname;
pub use kernel_routes::Netlink;
