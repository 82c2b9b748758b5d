//! The second connection of a batch import: a part's logins are COPYed on
//! a second server backend while the first stores its transfers.
//!
//! Why: one backend stores a part's rows at a time, and its COPYs were the
//! longest stage of an import (the client waits for them; measured on the
//! README's 115 MB log: the raw rows alone, COPYed into these tables, take
//! one backend 1.02 s and two backends, a table each, 0.67 s). rsyncd and
//! OpenSSH logs hold about as many logins as transfers, so the two COPYs of
//! a part are of similar size and both cores work (an xferlog, which logs
//! no logins, stays on one connection).
//!
//! Exactness: each connection's transaction holds its own events and
//! exactly their rollup deltas — but all the part's clients per day go
//! with the first one's (`daily_clients` is a set, so a client added twice
//! is kept once, and writing the same clients from both cost 0.1 s of a
//! 1.5 s run). The second commits first; the first, which holds the
//! ledger and the open sessions, after it. A crash (or a failed commit)
//! between the two leaves logins stored whose input is read again from the
//! older checkpoint: the re-read's COPY of that part meets them on the
//! primary key and the part goes through the stage table, which stores and
//! counts only what is missing and adds the clients of every row it meets
//! — the same argument as for the transaction that a new month's
//! partitions commit without its checkpoint (`settle`). Until that re-run,
//! `daily_clients` lacks those logins' clients, as the other rollups lack
//! the transfers that the lost transaction held.
//!
//! No deadlock between the two: while the second connection writes its
//! rollup rows (`daily_logins`, `daily_values`) and commits, the first
//! writes only those of tables the second never writes (`daily_transfers`,
//! `daily_clients`), and the rest once the second has committed.
//!
//! Used only for the parts of a batch import ([`crate::sinks::Sink::part`])
//! that hold both kinds and queue no hook deliveries (a delivery commits
//! with its event, on the first connection); a follower's small commits
//! stay on one connection. If the second connection cannot be opened (the
//! server's `max_connections`, say), the import goes on with one and says
//! so once.

use ::postgres::{Client, Config, NoTls};

use super::copy::{copy_events, RawCopy};
use super::rollup::{Pending, Share};
use crate::model::Event;

/// The second connection, opened on first use.
#[derive(Default)]
pub(super) enum Side {
    /// Not needed yet.
    #[default]
    Unopened,
    /// Could not be opened: the import uses one connection.
    Off,
    /// Open.
    On(Box<Second>),
}

/// The second connection and its transaction.
pub(super) struct Second {
    client: Client,
    copy: RawCopy,
    /// The rollup deltas of the logins its open transaction stored, or
    /// `None` when no transaction is open.
    open: Option<Pending>,
}

impl Side {
    /// The second connection, opened now if it was not (in the session
    /// set-up of the first); `None` if it cannot be.
    pub(super) fn get(&mut self, config: &Config, target: &str) -> Option<&mut Second> {
        if let Side::Unopened = self {
            *self = match Second::open(config) {
                Ok(second) => Side::On(Box::new(second)),
                Err(e) => {
                    // The server's own words ("too many connections …"):
                    // the driver's error says "db error" and holds them as
                    // its source.
                    let why = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(": ");
                    tracing::warn!("{target}: a second connection could not be opened ({why}); storing on one");
                    Side::Off
                }
            };
        }
        match self {
            Side::On(second) => Some(second),
            Side::Unopened | Side::Off => None,
        }
    }

    /// Whether a transaction is open.
    pub(super) fn is_open(&self) -> bool {
        matches!(self, Side::On(second) if second.open.is_some())
    }

    /// Writes the rollup deltas of the open transaction and commits it
    /// (before the first connection commits; see the module docs).
    pub(super) fn commit(&mut self) -> Result<(), ::postgres::Error> {
        match self {
            Side::On(second) => second.commit(),
            Side::Unopened | Side::Off => Ok(()),
        }
    }

    /// Rolls back the open transaction, if any (the run failed).
    pub(super) fn rollback(&mut self) {
        if let Side::On(second) = self {
            if second.open.take().is_some() {
                let _ = second.client.batch_execute("ROLLBACK");
            }
        }
    }
}

impl Second {
    fn open(config: &Config) -> Result<Second, ::postgres::Error> {
        let mut client = config.connect(NoTls)?;
        client.batch_execute("SET TIME ZONE 'UTC'; SET client_min_messages = warning")?;
        let copy = RawCopy::prepare(&mut client)?;
        Ok(Second { client, copy, open: None })
    }

    /// COPYs the logins of `events` (every one new, else the server
    /// refuses the COPY) in the open transaction (opening one), behind a
    /// savepoint that [`Second::undo`] goes back to, and sums their rollup
    /// deltas while the server stores them. On an error nothing of the
    /// part is left summed.
    pub(super) fn store(&mut self, events: &[Event], input: Option<u64>) -> Result<(), ::postgres::Error> {
        let sql = match self.open {
            // The part before left its savepoint in place: released in the
            // same round trip that takes this part's.
            Some(_) => "RELEASE SAVEPOINT fast; SAVEPOINT fast",
            None => "BEGIN; SET LOCAL synchronous_commit = off; SAVEPOINT fast",
        };
        let Second { client, copy, open } = self;
        // Open from here on, so that a failure rolls it back.
        let pending = open.get_or_insert_with(Pending::default);
        client.batch_execute(sql)?;
        let mut added = false;
        let stored = copy_events(client, &copy.statements[1], events, input, true, || {
            pending.add_share(events, Share::Logins);
            added = true;
        });
        if stored.is_err() && added {
            pending.remove_share(events, Share::Logins);
        }
        stored.map(|_| ())
    }

    /// Takes back the part of the last [`Second::store`] (`stored`: it
    /// succeeded, so its deltas are summed) — the first connection's COPY
    /// of the same part was refused, and the exact path stores it whole.
    pub(super) fn undo(&mut self, events: &[Event], stored: bool) -> Result<(), ::postgres::Error> {
        self.client.batch_execute("ROLLBACK TO SAVEPOINT fast")?;
        if let (true, Some(pending)) = (stored, &mut self.open) {
            pending.remove_share(events, Share::Logins);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ::postgres::Error> {
        let Some(mut pending) = self.open.take() else { return Ok(()) };
        let result = pending.write(&mut self.client).and_then(|()| self.client.batch_execute("COMMIT"));
        if result.is_err() {
            let _ = self.client.batch_execute("ROLLBACK");
        }
        result
    }
}
