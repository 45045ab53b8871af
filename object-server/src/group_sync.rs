//! Group commit: the writers of one device share the flushes that make
//! their files durable.
//!
//! A durable object write needs its data and inode on stable storage before
//! its rename, and the rename (with any directory it created) after. Done
//! file by file that is three or four `fsync`s per replica, each a disk
//! cache flush. Here a writer instead asks its device for a sync that
//! starts after its request: one writer at a time runs `syncfs` on the
//! device's filesystem, and every writer that asked while it ran is served
//! by the next one. Alone, a writer waits for one `syncfs`; under load, one
//! `syncfs` serves every writer of that device that queued behind the
//! previous one (databases call this group commit).
//!
//! Errors: `syncfs` reports a writeback error once, to whichever sync comes
//! first after it, which need not be the one a failed file's writer waits
//! for. So a writer samples the device's error count when it begins
//! ([`GroupSync::begin`]) and fails if any sync reported an error before its
//! own finished: a failure is never acknowledged, at the cost of failing a
//! few writes that were in flight beside it. Each writer also checks its own
//! file's writeback errors (`sync_file_range` with `WAIT_AFTER`, which
//! reports the errors recorded against that open file without flushing).
//!
//! Everything here blocks: callers are on a device's blocking pool.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

/// The flush that a group shares: for a device, `syncfs` of its filesystem.
type SyncFn = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// The syncs of one device.
pub struct GroupSync {
    state: Mutex<State>,
    finished: Condvar,
    sync: SyncFn,
}

#[derive(Default)]
struct State {
    /// Syncs begun so far; the running one, if any, is number `started`.
    started: u64,
    /// The number of the last sync that has finished.
    finished: u64,
    running: bool,
    /// Writers parked until the running sync ends.
    waiting: usize,
    /// Syncs that failed so far, and the last failure.
    errors: u64,
    last_error: Option<(Option<i32>, String)>,
}

/// What a writer saw when it began: syncs that fail after this fail it.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    errors: u64,
}

impl GroupSync {
    /// A group whose shared flush is `sync`.
    pub fn new(sync: impl Fn() -> io::Result<()> + Send + Sync + 'static) -> GroupSync {
        GroupSync { state: Mutex::new(State::default()), finished: Condvar::new(), sync: Box::new(sync) }
    }

    /// The group of the filesystem that holds `device_path`: `syncfs` on it.
    fn for_path(device_path: &Path) -> GroupSync {
        let path = device_path.to_path_buf();
        GroupSync::new(move || syncfs(&path))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("group sync lock poisoned")
    }

    /// Call before writing anything that a later [`GroupSync::sync`] is to
    /// make durable.
    pub fn begin(&self) -> Ticket {
        Ticket { errors: self.lock().errors }
    }

    /// Returns once a sync that began after this call has finished: what
    /// the caller wrote before calling is then on stable storage. An error
    /// if any sync failed since `ticket` was taken.
    pub fn sync(&self, ticket: &Ticket) -> io::Result<()> {
        let mut st = self.lock();
        // The running sync may have begun before our writes: only the next
        // one is sure to cover them.
        let wanted = st.started + 1;
        while st.finished < wanted {
            if st.running {
                st.waiting += 1;
                st = self.finished.wait(st).expect("group sync lock poisoned");
                st.waiting -= 1;
                continue;
            }
            st.running = true;
            st.started += 1;
            let number = st.started;
            drop(st);
            let result = (self.sync)();
            st = self.lock();
            st.running = false;
            st.finished = number;
            if let Err(e) = result {
                st.errors += 1;
                st.last_error = Some((e.raw_os_error(), e.to_string()));
            }
            self.finished.notify_all();
        }
        if st.errors == ticket.errors {
            return Ok(());
        }
        Err(match &st.last_error {
            Some((Some(code), _)) => io::Error::from_raw_os_error(*code),
            Some((None, text)) => io::Error::other(format!("sync failed: {text}")),
            None => io::Error::other("sync failed"),
        })
    }
}

/// The group of the device at `device_path`, one per device in the process.
pub fn for_device(device_path: &Path) -> Arc<GroupSync> {
    static GROUPS: LazyLock<Mutex<HashMap<PathBuf, Arc<GroupSync>>>> = LazyLock::new(Default::default);
    let mut groups = GROUPS.lock().expect("group sync registry poisoned");
    groups.entry(device_path.to_path_buf()).or_insert_with(|| Arc::new(GroupSync::for_path(device_path))).clone()
}

/// `syncfs` of the filesystem holding `path`: its dirty data and metadata
/// written, then the disk's cache flushed. The descriptor is opened for the
/// call only, so an idle server holds nothing open that would keep an
/// operator from unmounting a failed disk.
fn syncfs(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The writeback errors recorded against `file` since it was opened,
/// without writing or flushing anything: for a file whose pages a
/// [`GroupSync::sync`] has just written.
pub fn check_writeback(file: &File) -> io::Result<()> {
    // SAFETY: sync_file_range on a descriptor we own; offset 0 and length 0
    // mean the whole file.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WAIT_AFTER) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::mpsc;

    #[test]
    fn a_lone_writer_runs_one_sync() {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let group = GroupSync::new(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let t = group.begin();
        group.sync(&t).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        group.sync(&t).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2, "each call waits for a sync begun after it");
    }

    /// A sync that was already running when a writer asked does not serve
    /// it; the writers that queue behind one sync share the next.
    #[test]
    fn writers_queued_behind_a_running_sync_share_the_next() {
        let count = Arc::new(AtomicU64::new(0));
        let (entered_tx, entered_rx) = mpsc::channel::<u64>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let c = count.clone();
        let group = Arc::new(GroupSync::new(move || {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            entered_tx.send(n).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            Ok(())
        }));
        let g = group.clone();
        let first = std::thread::spawn(move || g.sync(&g.begin()));
        assert_eq!(entered_rx.recv().unwrap(), 1, "the first writer runs sync 1");
        // Three more writers ask while sync 1 runs.
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let g = group.clone();
                std::thread::spawn(move || g.sync(&g.begin()))
            })
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while group.lock().waiting < 3 {
            assert!(std::time::Instant::now() < deadline, "the three writers never waited");
            std::thread::yield_now();
        }
        release_tx.send(()).unwrap();
        first.join().unwrap().unwrap();
        // One of the three runs sync 2, and it serves all of them.
        assert_eq!(entered_rx.recv().unwrap(), 2);
        release_tx.send(()).unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
        assert_eq!(count.load(Ordering::SeqCst), 2, "four writers, two syncs");
    }

    #[test]
    fn a_failed_sync_fails_every_writer_that_began_before_it() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = fail.clone();
        let group = GroupSync::new(move || if f.load(Ordering::SeqCst) { Err(io::Error::from_raw_os_error(libc::EIO)) } else { Ok(()) });
        let before = group.begin();
        fail.store(true, Ordering::SeqCst);
        let e = group.sync(&group.begin()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        fail.store(false, Ordering::SeqCst);
        // This writer's own sync succeeds, but an error was reported while
        // its write was in flight: it may have been this writer's.
        assert_eq!(group.sync(&before).unwrap_err().raw_os_error(), Some(libc::EIO));
        // A writer that began after the failure is not held to it.
        group.sync(&group.begin()).unwrap();
    }

    #[test]
    fn syncfs_and_the_writeback_check_work_on_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let group = for_device(dir.path());
        assert!(Arc::ptr_eq(&group, &for_device(dir.path())), "one group per device");
        let t = group.begin();
        let mut f = File::create(dir.path().join("f")).unwrap();
        std::io::Write::write_all(&mut f, b"data").unwrap();
        group.sync(&t).unwrap();
        check_writeback(&f).unwrap();
        assert!(for_device(&dir.path().join("missing")).sync(&t).is_err(), "a device that is gone cannot be synced");
    }
}
