//! Writing into the host's directories so that a reader never sees half a file: each file
//! is written to a hidden temporary name in the same directory, synced, given its mode,
//! and renamed over the target (rename within a directory is atomic). Kubelet and the
//! container runtime watch `/etc/cni/net.d` and run whatever is in `/opt/cni/bin`, so a
//! torn conflist or binary would be used as is. A file whose content and mode already
//! match is left alone (no rename, no inotify event, same inode).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::InstallError;

/// What happened to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written (it was missing or differed).
    Written,
    /// Already had this content and mode.
    Unchanged,
    /// Left as it was because updates are off (`UPDATE_CNI_BINARIES=false`).
    Kept,
}

/// Writes `content` to `path` with `mode` unless it already holds exactly that.
pub fn write_if_changed(path: &Path, content: &[u8], mode: u32) -> Result<Outcome, InstallError> {
    if is_current(path, content, mode)? {
        return Ok(Outcome::Unchanged);
    }
    write_atomic(path, content, mode)?;
    Ok(Outcome::Written)
}

/// Copies the binary `src` to `dst` with mode 0755 unless `dst` already is a copy; when
/// `update` is false an existing `dst` is kept whatever it holds (Calico's
/// `UPDATE_CNI_BINARIES=false`).
pub fn install_binary(src: &Path, dst: &Path, update: bool) -> Result<Outcome, InstallError> {
    if !update && fs::symlink_metadata(dst).is_ok() {
        return Ok(Outcome::Kept);
    }
    let content = fs::read(src).map_err(|e| io("reading", src, e))?;
    write_if_changed(dst, &content, 0o755)
}

/// Removes `path` if it exists.
pub fn remove_if_present(path: &Path) -> Result<bool, InstallError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("removing", path, e)),
    }
}

fn is_current(path: &Path, content: &[u8], mode: u32) -> Result<bool, InstallError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("reading", path, e)),
    };
    if !meta.file_type().is_file()
        || meta.len() != content.len() as u64
        || meta.permissions().mode() & 0o7777 != mode
    {
        return Ok(false);
    }
    let current = fs::read(path).map_err(|e| io("reading", path, e))?;
    Ok(current == content)
}

fn write_atomic(path: &Path, content: &[u8], mode: u32) -> Result<(), InstallError> {
    let tmp = temp_path(path)?;
    let result = (|| {
        // A leftover from a run that died midway is ours to replace.
        remove_if_present(&tmp)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| io("creating", &tmp, e))?;
        file.write_all(content)
            .map_err(|e| io("writing", &tmp, e))?;
        // The umask may have cut bits from the mode given at creation.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io("setting the mode of", &tmp, e))?;
        file.sync_all().map_err(|e| io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| io("renaming into", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; a directory that cannot be synced is no reason to
    // fail an install that already happened.
    if let Some(dir) = path.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// `<dir>/.<name>.install-cni.tmp`: hidden, and without the `.conf`/`.conflist`/`.json`
/// ending a runtime would load from the network config directory.
fn temp_path(path: &Path) -> Result<PathBuf, InstallError> {
    let name = path
        .file_name()
        .ok_or_else(|| InstallError::new(format!("{} names no file", path.display())))?;
    Ok(path.with_file_name(format!(".{}.install-cni.tmp", name.to_string_lossy())))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> InstallError {
    InstallError::new(format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    /// A directory removed on drop (the crate has no tempfile dependency).
    struct TempDir(PathBuf);

    impl TempDir {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cni-install-files-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_then_leaves_an_identical_file_alone() {
        let dir = tempdir();
        let path = dir.path().join("10-calico.conflist");
        assert_eq!(
            write_if_changed(&path, b"one", 0o644).unwrap(),
            Outcome::Written
        );
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(mode(&path), 0o644);
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(
            write_if_changed(&path, b"one", 0o644).unwrap(),
            Outcome::Unchanged
        );
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "rewritten");
        // New content, and the same content with another mode, are written by rename.
        assert_eq!(
            write_if_changed(&path, b"two", 0o644).unwrap(),
            Outcome::Written
        );
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode, "not renamed");
        assert_eq!(
            write_if_changed(&path, b"two", 0o600).unwrap(),
            Outcome::Written
        );
        assert_eq!(mode(&path), 0o600);
        // Nothing but the target is left in the directory.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [path.file_name().unwrap()]);
    }

    #[test]
    fn a_stale_temporary_file_is_replaced() {
        let dir = tempdir();
        let path = dir.path().join("calico-kubeconfig");
        fs::write(temp_path(&path).unwrap(), b"torn").unwrap();
        write_if_changed(&path, b"whole", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole");
        assert!(!temp_path(&path).unwrap().exists());
    }

    #[test]
    fn a_write_into_a_missing_directory_fails_naming_the_file() {
        let dir = tempdir();
        let path = dir.path().join("sub").join("file");
        let err = write_if_changed(&path, b"x", 0o644).unwrap_err();
        assert!(err.to_string().contains("creating"), "{err}");
    }

    #[test]
    fn binaries_get_0755_and_are_copied_only_when_changed() {
        let dir = tempdir();
        let src = dir.path().join("calico");
        let dst = dir.path().join("installed");
        fs::write(&src, b"\x7fELF v1").unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(install_binary(&src, &dst, true).unwrap(), Outcome::Written);
        assert_eq!(mode(&dst), 0o755);
        assert_eq!(fs::read(&dst).unwrap(), b"\x7fELF v1");
        assert_eq!(
            install_binary(&src, &dst, true).unwrap(),
            Outcome::Unchanged
        );
        fs::write(&src, b"\x7fELF v2").unwrap();
        // Updates off: an existing binary is kept, a missing one is still installed.
        assert_eq!(install_binary(&src, &dst, false).unwrap(), Outcome::Kept);
        assert_eq!(fs::read(&dst).unwrap(), b"\x7fELF v1");
        assert_eq!(install_binary(&src, &dst, true).unwrap(), Outcome::Written);
        assert_eq!(fs::read(&dst).unwrap(), b"\x7fELF v2");
        fs::remove_file(&dst).unwrap();
        assert_eq!(install_binary(&src, &dst, false).unwrap(), Outcome::Written);
    }

    #[test]
    fn temporary_names_are_hidden_and_not_config_files() {
        let tmp = temp_path(Path::new("/host/etc/cni/net.d/10-calico.conflist")).unwrap();
        assert_eq!(
            tmp,
            Path::new("/host/etc/cni/net.d/.10-calico.conflist.install-cni.tmp")
        );
    }
}
