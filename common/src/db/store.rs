//! The databases of one kind (accounts or containers) on a server's
//! devices: where a database file lives, and running blocking broker work
//! on the device's own pool.

use super::account::{self, AccountKind};
use super::broker::{db_path, BrokerKind};
use super::container::{self, ContainerKind};
use crate::devices::{DeviceError, Devices};
use crate::hash::HashPathConf;
use crate::path::StoragePath;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `K` databases (account or container) of this server's devices.
pub struct DatabaseStore<K: BrokerKind> {
    devices: Arc<Devices>,
    hash: HashPathConf,
    kind: PhantomData<fn() -> K>,
}

impl<K: BrokerKind> DatabaseStore<K> {
    pub fn new(devices: Devices, hash: HashPathConf) -> Self {
        DatabaseStore { devices: Arc::new(devices), hash, kind: PhantomData }
    }

    /// Runs `work` on `device`'s blocking pool with the device's path, after
    /// checking the device may take requests (missing/unmounted → Err).
    pub async fn run<T, F>(&self, device: &str, work: F) -> Result<T, DeviceError>
    where
        F: FnOnce(PathBuf) -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = self.devices.check_async(device).await?;
        Ok(self.devices.run(device, move || work(path)).await)
    }
}

impl DatabaseStore<AccountKind> {
    /// The database file of `account` on a device:
    /// `<dev>/accounts/<part>/<suffix>/<hash>/<hash>.db`.
    pub fn db_file(&self, device_path: &Path, partition: u32, account: &str) -> PathBuf {
        // hash_path fails only for an object without a container.
        let hash = self.hash.hash_path(account, None, None).expect("account-only hash");
        db_path(device_path, account::DATADIR, partition, &hash)
    }

    /// Runs `work` with the database file of the account `path` names (its
    /// container segment, if any, is a row in that database), on the
    /// device's blocking pool as [`DatabaseStore::run`] does.
    pub async fn run_on_db<T, F>(self: &Arc<Self>, path: &StoragePath, work: F) -> Result<T, DeviceError>
    where
        F: FnOnce(PathBuf) -> T + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        let (partition, account) = (path.partition, path.account.clone());
        self.run(&path.device, move |dev| work(store.db_file(&dev, partition, &account))).await
    }
}

impl DatabaseStore<ContainerKind> {
    /// The database file of `account/container` on a device.
    pub fn db_file(&self, device_path: &Path, partition: u32, account: &str, container: &str) -> PathBuf {
        // hash_path fails only for an object without a container.
        let hash = self.hash.hash_path(account, Some(container), None).expect("container given");
        db_path(device_path, container::DATADIR, partition, &hash)
    }

    /// The database file of the container a request path names.
    pub fn container_db(&self, device_path: &Path, path: &StoragePath) -> PathBuf {
        self.db_file(device_path, path.partition, &path.account, path.container.as_deref().unwrap_or_default())
    }

    /// Runs `work` with the database file of the container `path` names,
    /// on the device's blocking pool as [`DatabaseStore::run`] does.
    pub async fn run_on_db<T, F>(self: &Arc<Self>, path: &StoragePath, work: F) -> Result<T, DeviceError>
    where
        F: FnOnce(PathBuf) -> T + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        let p = path.clone();
        self.run(&path.device, move |dev| work(store.container_db(&dev, &p))).await
    }
}
