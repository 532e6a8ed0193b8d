//! The outcomes of calls sent from the server's runtime, written by one
//! thread of their own, several to a transaction.
//!
//! Why a thread: the blocking thread that made a call ready used to wait
//! for its flight and then write its outcome through the group commit:
//! under 64 clients, those waits (for the flight, then for another call's
//! commit) were a third of the server's context switches, each a thread
//! put to sleep and woken again. The recorder takes every outcome queued
//! since its last write at once, so under load it is woken rarely and a
//! call's blocking thread is free as soon as its request has left.
//!
//! A call keeps its slot until its outcome is written (a server stopping
//! waits for every slot), and its answer is ended, or aborted if the
//! outcome could not be written, only then: as when its blocking thread
//! wrote it.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::OwnedSemaphorePermit;

use super::routes::Reply;
use super::stream::ChannelSink;
use crate::broker::{Broker, BrokerError, Delivered, DevOverrides, Landing, unrecorded};
use crate::registry::Registry;
use crate::vault::VaultPool;

/// Writes the outcomes handed to it until it is dropped (and then the
/// ones still queued).
pub(super) struct Recorder {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    landed: Vec<Landed>,
    /// The recorder is waiting for work (only then is it woken).
    idle: bool,
    closed: bool,
}

/// A call whose request was sent, with how it went.
struct Landed {
    landing: Landing,
    result: Result<Delivered, BrokerError>,
    sink: ChannelSink,
    slot: OwnedSemaphorePermit,
}

impl Recorder {
    pub(super) fn start(
        vaults: Arc<VaultPool>,
        registry: Arc<Registry>,
        dev: DevOverrides,
    ) -> std::io::Result<Arc<Self>> {
        let queue = Arc::new(Queue::default());
        let thread = std::thread::Builder::new().name("aivault-record".into()).spawn({
            let queue = Arc::clone(&queue);
            move || record_until_closed(&queue, &vaults, &registry, &dev)
        })?;
        Ok(Arc::new(Recorder { queue, thread: Some(thread) }))
    }

    fn push(&self, landed: Landed) {
        let mut state = lock(&self.queue.state);
        state.landed.push(landed);
        let wake = std::mem::take(&mut state.idle);
        drop(state);
        if wake {
            self.queue.ready.notify_one();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        lock(&self.queue.state).closed = true;
        self.queue.ready.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A call in flight whose outcome goes to the recorder: how it went, or,
/// if the flight is dropped unfinished (its client went away), that the
/// caller left.
pub(super) struct ToRecord {
    recorder: Arc<Recorder>,
    /// The call, with its own sink for a flight that never ends; taken
    /// once it is queued.
    call: Option<(Landing, OwnedSemaphorePermit, ChannelSink)>,
}

impl ToRecord {
    pub(super) fn new(
        recorder: &Arc<Recorder>,
        landing: Landing,
        slot: OwnedSemaphorePermit,
        sink: ChannelSink,
    ) -> Self {
        ToRecord { recorder: Arc::clone(recorder), call: Some((landing, slot, sink)) }
    }

    /// The flight ended with `result`; its answer went (or is going) to `sink`.
    pub(super) fn landed(mut self, result: Result<Delivered, BrokerError>, sink: ChannelSink) {
        if let Some((landing, slot, _never_ended)) = self.call.take() {
            self.recorder.push(Landed { landing, result, sink, slot });
        }
    }
}

impl Drop for ToRecord {
    fn drop(&mut self) {
        if let Some((landing, slot, sink)) = self.call.take() {
            self.recorder.push(Landed { landing, result: Err(BrokerError::CallerGone), sink, slot });
        }
    }
}

fn record_until_closed(queue: &Queue, vaults: &Arc<VaultPool>, registry: &Registry, dev: &DevOverrides) {
    loop {
        let mut state = lock(&queue.state);
        while state.landed.is_empty() {
            if state.closed {
                return;
            }
            state.idle = true;
            state = queue.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.idle = false;
        let batch = std::mem::take(&mut state.landed);
        drop(state);
        // A bug while writing one batch must not stop the next; the
        // batch's slots are let go and its answers ended either way.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| record(batch, vaults, registry, dev)));
    }
}

/// Writes `batch`'s outcomes together, then ends each call's answer
/// (aborting it if its outcome could not be written) and frees its slot.
fn record(batch: Vec<Landed>, vaults: &Arc<VaultPool>, registry: &Registry, dev: &DevOverrides) {
    let (calls, ends): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|l| ((l.landing, l.result), (l.sink, l.slot))).unzip();
    let results = match vaults.get() {
        Ok(mut vault) => Broker::new(&mut vault, registry, dev).land_all(calls),
        // Each call then learns on its own why its outcome went unwritten.
        Err(_) => calls
            .into_iter()
            .map(|(landing, result)| match vaults.get() {
                Ok(mut vault) => Broker::new(&mut vault, registry, dev).land(landing, result),
                Err(e) => Err(unrecorded(result, e)),
            })
            .collect(),
    };
    for (result, (mut sink, slot)) in results.into_iter().zip(ends) {
        match result {
            Ok(_) => sink.ended(),
            // Every other call's outcome waits behind this thread.
            Err(e) => sink.fail_without_waiting(Reply::broker_error(&e)),
        }
        drop(slot);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
