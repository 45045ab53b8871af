//! The devices a storage server owns (`<devices>/<device>`), the mount
//! check, and the per-device blocking pools that keep disk and SQLite work
//! off the async runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Why a device cannot take a request: Swift answers 507 for both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("device {0} does not exist")]
    Missing(String),
    #[error("device {0} is not mounted")]
    NotMounted(String),
}

/// The `devices` root of a server and its per-device work pools.
pub struct Devices {
    root: PathBuf,
    mount_check: bool,
    threads_per_device: usize,
    pools: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Devices {
    /// `threads_per_device` bounds how many blocking disk operations one
    /// device runs at once, so a slow disk holds only its own share of the
    /// blocking threads.
    pub fn new(root: impl Into<PathBuf>, mount_check: bool, threads_per_device: usize) -> Devices {
        Devices { root: root.into(), mount_check, threads_per_device: threads_per_device.max(1), pools: Mutex::new(HashMap::new()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn mount_check(&self) -> bool {
        self.mount_check
    }

    /// The device's directory if it may take requests: it must exist (Swift's
    /// `check_dir`) and, with `mount_check`, be a mount point (`check_mount`).
    /// Blocking (a `stat` or two): call it through [`Devices::run`].
    pub fn check(&self, device: &str) -> Result<PathBuf, DeviceError> {
        let path = self.root.join(device);
        if self.mount_check {
            if !is_mount(&path) {
                return Err(DeviceError::NotMounted(device.to_string()));
            }
        } else if !path.is_dir() {
            return Err(DeviceError::Missing(device.to_string()));
        }
        Ok(path)
    }

    fn pool(&self, device: &str) -> Arc<Semaphore> {
        let mut pools = self.pools.lock().expect("device pool lock poisoned");
        pools.entry(device.to_string()).or_insert_with(|| Arc::new(Semaphore::new(self.threads_per_device))).clone()
    }

    /// Runs blocking work for `device` on the blocking thread pool, at most
    /// `threads_per_device` at a time per device.
    pub async fn run<T, F>(&self, device: &str, work: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool(device);
        let _permit = pool.acquire_owned().await.expect("device pools are never closed");
        match tokio::task::spawn_blocking(work).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// Swift's `ismount`: a directory on another filesystem than its parent,
/// or the root; also any device dir (or symlink to one) holding a
/// `.ismount` file, the stub operators place where device and inode checks
/// do not work (containers, all-in-one setups, symlinked test devices).
pub fn is_mount(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return false };
    let stub = || path.join(".ismount").is_file();
    if meta.file_type().is_symlink() {
        return stub();
    }
    if !meta.is_dir() {
        return false;
    }
    let Ok(parent) = std::fs::symlink_metadata(path.join("..")) else { return false };
    meta.dev() != parent.dev() || meta.ino() == parent.ino() || stub()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unmounted_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sda")).unwrap();
        let d = Devices::new(dir.path(), false, 4);
        assert!(d.check("sda").is_ok());
        assert_eq!(d.check("sdb"), Err(DeviceError::Missing("sdb".into())));
        let d = Devices::new(dir.path(), true, 4);
        assert_eq!(d.check("sda"), Err(DeviceError::NotMounted("sda".into())));
        assert!(is_mount(Path::new("/")));
    }

    #[tokio::test]
    async fn work_runs_off_the_runtime() {
        let d = Devices::new("/tmp", false, 1);
        let v = d.run("sda", || std::thread::current().name().map(str::to_string)).await;
        assert_ne!(v.as_deref(), Some("main"));
    }
}
