//! Threads inside a network namespace: everything such a thread does lands there (netlink
//! and other sockets it opens, `/proc/sys/net` files, and the children it spawns, which
//! inherit the namespace of the thread that forks them).

use std::fs::File;
use std::future::Future;
use std::path::Path;

use nix::sched::{CloneFlags, setns, unshare};

use crate::netns::Netns;

/// Runs `f` on a new thread that first entered `ns`, with a current-thread tokio runtime
/// (so every task and spawned child stays on that thread, in that namespace). Panics in
/// `f` are re-raised here.
pub fn in_ns<F, Fut, T>(ns: &Netns, f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let path = ns.path();
    on_thread_after(move || enter(&path), f)
}

/// Moves the calling thread into the network namespace at `path` (a [`Netns::path`]);
/// what it opens and spawns from then on lives there. Panics when it cannot.
pub fn enter(path: &Path) {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    setns(&file, CloneFlags::CLONE_NEWNET).expect("setns(CLONE_NEWNET) needs root");
}

/// Runs `f` on a new thread inside a new, anonymous network namespace (the kernel removes
/// it, with every veth, route, chain and set inside, when the thread ends: also when `f`
/// panics). Otherwise like [`in_ns`].
pub fn in_new_netns<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    on_thread_after(
        || {
            unshare(CloneFlags::CLONE_NEWNET)
                .expect("unshare(CLONE_NEWNET) failed: namespace tests need root")
        },
        f,
    )
}

/// Runs `f` on a new thread, after `enter` (which moves the thread into a namespace), with
/// a current-thread tokio runtime. Panics are re-raised here.
pub fn on_thread_after<E, F, Fut, T>(enter: E, f: F) -> T
where
    E: FnOnce() + Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let thread = std::thread::spawn(move || {
        enter();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        rt.block_on(f())
    });
    match thread.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
