//! `testnet demo`: a virtual cluster in network namespaces showing the whole system.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("testnet demo: not wired yet")
}
