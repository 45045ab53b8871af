//! Group commit: the writers of one filesystem share the flushes that make
//! their files durable.
//!
//! A durable object write needs its data and inode on stable storage before
//! its rename, and the rename (with any directory it created) after. Done
//! file by file that is three or four `fsync`s per replica, each a disk
//! cache flush. Here a writer instead asks its filesystem for a sync that
//! starts after its request: one writer at a time runs `syncfs` (on its own
//! file), and every writer that asked while it ran is served by the next
//! one. Alone, a writer waits for one `syncfs`; under load, one `syncfs`
//! serves every writer that queued behind the previous one (databases call
//! this group commit). Groups are per filesystem, not per device: devices
//! that share one (as in an all-in-one) share its syncs too.
//!
//! Errors: `syncfs` reports a writeback error once, to whichever sync comes
//! first after it, which need not be the one a failed file's writer waits
//! for. So a writer samples its group's error count when it begins
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
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard};

/// The flush that a group shares, run on the leader's file: `syncfs`.
type SyncFn = Box<dyn Fn(&File) -> io::Result<()> + Send + Sync>;

/// The syncs of one filesystem.
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
    pub fn new(sync: impl Fn(&File) -> io::Result<()> + Send + Sync + 'static) -> GroupSync {
        GroupSync { state: Mutex::new(State::default()), finished: Condvar::new(), sync: Box::new(sync) }
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
    /// if any sync failed since `ticket` was taken. `file`, on the group's
    /// filesystem, is what the sync runs on if this caller leads it.
    pub fn sync(&self, ticket: &Ticket, file: &File) -> io::Result<()> {
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
            let result = (self.sync)(file);
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

/// The group of the filesystem that holds `file`, one per filesystem in
/// the process.
pub fn for_file(file: &File) -> io::Result<Arc<GroupSync>> {
    static GROUPS: LazyLock<Mutex<HashMap<u64, Arc<GroupSync>>>> = LazyLock::new(Default::default);
    let fs = std::os::unix::fs::MetadataExt::dev(&file.metadata()?);
    let mut groups = GROUPS.lock().expect("group sync registry poisoned");
    Ok(groups.entry(fs).or_insert_with(|| Arc::new(GroupSync::new(syncfs))).clone())
}

/// `syncfs` of the filesystem holding `file`: its dirty data and metadata
/// written, then the disk's cache flushed.
fn syncfs(file: &File) -> io::Result<()> {
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
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
        let group = GroupSync::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
        let file = tempfile::tempfile().unwrap();
        let t = group.begin();
        group.sync(&t, &file).unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        group.sync(&t, &file).unwrap();
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
        let group = Arc::new(GroupSync::new(move |_| {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            entered_tx.send(n).unwrap();
            release_rx.lock().unwrap().recv().unwrap();
            Ok(())
        }));
        let g = group.clone();
        let first = std::thread::spawn(move || g.sync(&g.begin(), &tempfile::tempfile().unwrap()));
        assert_eq!(entered_rx.recv().unwrap(), 1, "the first writer runs sync 1");
        // Three more writers ask while sync 1 runs.
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let g = group.clone();
                std::thread::spawn(move || g.sync(&g.begin(), &tempfile::tempfile().unwrap()))
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
        let group = GroupSync::new(move |_| if f.load(Ordering::SeqCst) { Err(io::Error::from_raw_os_error(libc::EIO)) } else { Ok(()) });
        let file = tempfile::tempfile().unwrap();
        let before = group.begin();
        fail.store(true, Ordering::SeqCst);
        let e = group.sync(&group.begin(), &file).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        fail.store(false, Ordering::SeqCst);
        // This writer's own sync succeeds, but an error was reported while
        // its write was in flight: it may have been this writer's.
        assert_eq!(group.sync(&before, &file).unwrap_err().raw_os_error(), Some(libc::EIO));
        // A writer that began after the failure is not held to it.
        group.sync(&group.begin(), &file).unwrap();
    }

    #[test]
    fn syncfs_and_the_writeback_check_work_on_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("f")).unwrap();
        let group = for_file(&f).unwrap();
        let other = File::create(dir.path().join("g")).unwrap();
        assert!(Arc::ptr_eq(&group, &for_file(&other).unwrap()), "one group per filesystem");
        let t = group.begin();
        std::io::Write::write_all(&mut f, b"data").unwrap();
        group.sync(&t, &f).unwrap();
        check_writeback(&f).unwrap();
    }
}
