//! The `calico-ipam` CNI IPAM plugin (run by the container runtime or by `calico`).

fn main() -> std::process::ExitCode {
    cni::skel::main(cni::ipam_plugin::run)
}
