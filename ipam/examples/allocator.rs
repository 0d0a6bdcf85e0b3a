//! A standalone allocator process: loops alloc/release against an etcd and prints each
//! event (see tests/common/allocator.rs for the output format).
//!
//! `allocator <etcd endpoint> <host> <label> <cycles> <hold> [pool cidr] [block size]`

#[path = "../tests/common/allocator.rs"]
mod allocator;

use ipam::PoolSpec;

#[tokio::main]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!(
            "usage: {} <etcd endpoint> <host> <label> <cycles> <hold> [pool cidr] [block size]",
            a[0]
        );
        std::process::exit(2);
    }
    let cidr = a.get(6).map(String::as_str).unwrap_or("10.244.0.0/16");
    let block_size = a
        .get(7)
        .map(|s| s.parse().expect("block size"))
        .unwrap_or(26);
    allocator::run(allocator::AllocatorConfig {
        endpoint: a[1].clone(),
        host: a[2].clone(),
        label: a[3].clone(),
        cycles: a[4].parse().expect("cycles"),
        hold: a[5].parse().expect("hold"),
        pool: PoolSpec::new(cidr.parse().expect("pool cidr"), block_size),
    })
    .await;
}
