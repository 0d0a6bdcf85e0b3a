//! The `calico` CNI plugin (run by the container runtime; see the `cni` crate).

fn main() -> std::process::ExitCode {
    cni::skel::main(cni::calico::run)
}
