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
    /// One pool per device that has passed [`Devices::check`]: names that a
    /// client merely sent never get one, so they cannot grow this map.
    pools: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Work for a device not (yet) checked shares this one pool.
    unchecked: Arc<Semaphore>,
}

impl Devices {
    /// `threads_per_device` bounds how many blocking disk operations one
    /// device runs at once, so a slow disk holds only its own share of the
    /// blocking threads.
    pub fn new(root: impl Into<PathBuf>, mount_check: bool, threads_per_device: usize) -> Devices {
        let threads_per_device = threads_per_device.max(1);
        Devices {
            root: root.into(),
            mount_check,
            threads_per_device,
            pools: Mutex::new(HashMap::new()),
            unchecked: Arc::new(Semaphore::new(threads_per_device)),
        }
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

    /// [`Devices::check`] off the runtime, on the shared pool; a device
    /// that passes gets its own pool for the work that follows.
    pub async fn check_async(&self, device: &str) -> Result<PathBuf, DeviceError> {
        let (root, mount_check, dev) = (self.root.clone(), self.mount_check, device.to_string());
        let checked = self.run_on(self.unchecked.clone(), move || Devices::new(root, mount_check, 1).check(&dev)).await;
        if checked.is_ok() {
            let mut pools = self.pools.lock().expect("device pool lock poisoned");
            if !pools.contains_key(device) {
                pools.insert(device.to_string(), Arc::new(Semaphore::new(self.threads_per_device)));
            }
        }
        checked
    }

    fn pool(&self, device: &str) -> Arc<Semaphore> {
        let pools = self.pools.lock().expect("device pool lock poisoned");
        pools.get(device).cloned().unwrap_or_else(|| self.unchecked.clone())
    }

    async fn run_on<T, F>(&self, pool: Arc<Semaphore>, work: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = pool.acquire_owned().await.expect("device pools are never closed");
        match tokio::task::spawn_blocking(work).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Runs blocking work for `device` on the blocking thread pool, at most
    /// `threads_per_device` at a time per checked device (devices never
    /// checked share one such limit).
    pub async fn run<T, F>(&self, device: &str, work: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run_on(self.pool(device), work).await
    }

    /// How many devices have a pool of their own.
    pub fn pool_count(&self) -> usize {
        self.pools.lock().expect("device pool lock poisoned").len()
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
    async fn only_checked_devices_get_a_pool() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sda")).unwrap();
        let d = Devices::new(dir.path(), false, 2);
        for i in 0..100 {
            let name = format!("nope{i}");
            assert_eq!(d.check_async(&name).await, Err(DeviceError::Missing(name.clone())));
            assert_eq!(d.run(&name, || 7).await, 7);
        }
        assert_eq!(d.pool_count(), 0);
        assert!(d.check_async("sda").await.is_ok());
        assert!(d.check_async("sda").await.is_ok());
        assert_eq!(d.pool_count(), 1);
    }

    #[tokio::test]
    async fn work_runs_off_the_runtime() {
        let d = Devices::new("/tmp", false, 1);
        let v = d.run("sda", || std::thread::current().name().map(str::to_string)).await;
        assert_ne!(v.as_deref(), Some("main"));
    }
}
