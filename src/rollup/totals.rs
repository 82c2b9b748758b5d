//! Rollup rows summed over several commits' events, owning their key
//! texts: a store that takes a transaction in parts adds each part's
//! [`Deltas`] here (the part's events are gone by the time the transaction
//! commits) and writes every row once per transaction instead of once per
//! part. Adding costs a lookup per distinct row of a part, not per event.

use std::collections::{HashMap, HashSet};

use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::{login_row, transfer_row, Deltas, Metric};

/// The rollup tables [`Totals`] sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `daily_transfers`: the [`super::TRANSFER_KEYS`]; transfers, bytes.
    Transfers,
    /// `daily_logins`: the [`super::LOGIN_KEYS`] and outcome; logins.
    Logins,
    /// `daily_values`: field, day, v1, v2; the metrics in [`Metric::ALL`]
    /// order.
    Values,
}

impl Table {
    /// Every table, in the order [`Totals::rows`] gives them.
    pub const ALL: [Table; 3] = [Table::Transfers, Table::Logins, Table::Values];
}

/// Rollup rows and distinct clients per day, summed, with owned keys. A
/// key is its columns joined with NUL (log text holds none: events are
/// scrubbed of it), which sorts as the columns do.
#[derive(Debug, Default)]
pub struct Totals {
    tables: [HashMap<String, Vec<i64>, Xxh3DefaultBuilder>; 3],
    /// `client NUL day` (`daily_clients`' key order).
    clients: HashSet<String, Xxh3DefaultBuilder>,
    /// The key being looked up (reused: a key present costs no allocation).
    key: String,
}

impl Totals {
    /// Adds the deltas of the events a commit (or part) inserted.
    pub fn add(&mut self, deltas: &Deltas<'_>) {
        for (k, s) in deltas.transfers() {
            self.add_row(Table::Transfers, transfer_row(k).iter().map(|c| &**c), &[s.transfers, s.bytes]);
        }
        for (k, n) in deltas.logins() {
            self.add_row(Table::Logins, login_row(k).iter().map(|c| &**c), &[*n]);
        }
        for (k, m) in deltas.values() {
            self.add_row(Table::Values, k.row().iter().map(|c| &**c), &Metric::ALL.map(|x| x.of(&m) as i64));
        }
    }

    /// Adds `values` to the row of `table` keyed `cols`.
    fn add_row<'a>(&mut self, table: Table, cols: impl Iterator<Item = &'a str>, values: &[i64]) {
        join_into(&mut self.key, cols);
        let rows = &mut self.tables[table as usize];
        let row = match rows.get_mut(self.key.as_str()) {
            Some(row) => row,
            None => rows.entry(self.key.clone()).or_insert_with(|| vec![0; values.len()]),
        };
        for (sum, v) in row.iter_mut().zip(values) {
            *sum += v;
        }
    }

    /// Records that `client` was seen on `day` (`YYYY-MM-DD`).
    pub fn add_client(&mut self, client: &str, day: &str) {
        join_into(&mut self.key, [client, day].into_iter());
        if !self.clients.contains(self.key.as_str()) {
            self.clients.insert(self.key.clone());
        }
    }

    /// Adds the rows and clients of `other` (taking its keys).
    pub fn merge(&mut self, other: Totals) {
        for (rows, theirs) in self.tables.iter_mut().zip(other.tables) {
            if rows.is_empty() {
                *rows = theirs;
                continue;
            }
            for (key, values) in theirs {
                match rows.get_mut(key.as_str()) {
                    Some(row) => row.iter_mut().zip(values).for_each(|(sum, v)| *sum += v),
                    None => {
                        rows.insert(key, values);
                    }
                }
            }
        }
        if self.clients.is_empty() {
            self.clients = other.clients;
        } else {
            self.clients.extend(other.clients);
        }
    }

    /// Rows and clients held.
    pub fn len(&self) -> usize {
        self.tables.iter().map(HashMap::len).sum::<usize>() + self.clients.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows of `table` in key order: key columns, then the sums.
    pub fn rows(&self, table: Table) -> Vec<(Vec<&str>, &[i64])> {
        let mut rows: Vec<(&String, &Vec<i64>)> = self.tables[table as usize].iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows.into_iter().map(|(k, v)| (k.split('\0').collect(), v.as_slice())).collect()
    }

    /// The clients in key order: client, day.
    pub fn clients(&self) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = self.clients.iter().filter_map(|k| k.split_once('\0')).collect();
        v.sort_unstable();
        v
    }

    /// Forgets everything (the rows were written).
    pub fn clear(&mut self) {
        self.tables.iter_mut().for_each(HashMap::clear);
        self.clients.clear();
    }
}

/// Writes `cols` joined with NUL into `key` (a rollup row's key, kept as
/// one string).
pub(crate) fn join_into<'a>(key: &mut String, cols: impl Iterator<Item = &'a str>) {
    key.clear();
    for (i, c) in cols.enumerate() {
        if i > 0 {
            key.push('\0');
        }
        key.push_str(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_over_adds_and_come_in_key_order() {
        let mut t = Totals::default();
        t.add_row(Table::Transfers, ["2024-01-02", "h", "u"].into_iter(), &[1, 10]);
        t.add_row(Table::Transfers, ["2024-01-01", "h", "u"].into_iter(), &[2, 20]);
        t.add_row(Table::Transfers, ["2024-01-02", "h", "u"].into_iter(), &[3, 30]);
        // A shorter column sorts first, as the columns compare.
        t.add_row(Table::Transfers, ["2024-01-02", "h", "uv"].into_iter(), &[1, 1]);
        t.add_row(Table::Transfers, ["2024-01-02", "h", ""].into_iter(), &[1, 2]);
        t.add_client("10.0.0.1", "2024-01-02");
        t.add_client("10.0.0.1", "2024-01-02");
        t.add_client("10.0.0.1", "2024-01-01");
        assert_eq!(t.len(), 6);
        let rows = t.rows(Table::Transfers);
        let rows: Vec<(Vec<&str>, Vec<i64>)> = rows.into_iter().map(|(k, v)| (k, v.to_vec())).collect();
        assert_eq!(
            rows,
            [
                (vec!["2024-01-01", "h", "u"], vec![2, 20]),
                (vec!["2024-01-02", "h", ""], vec![1, 2]),
                (vec!["2024-01-02", "h", "u"], vec![4, 40]),
                (vec!["2024-01-02", "h", "uv"], vec![1, 1]),
            ]
        );
        assert!(t.rows(Table::Logins).is_empty());
        assert_eq!(t.clients(), [("10.0.0.1", "2024-01-01"), ("10.0.0.1", "2024-01-02")]);
        let mut other = Totals::default();
        other.add_row(Table::Transfers, ["2024-01-01", "h", "u"].into_iter(), &[1, 1]);
        other.add_row(Table::Transfers, ["2024-01-03", "h", "u"].into_iter(), &[5, 50]);
        other.add_row(Table::Logins, ["2024-01-03", "h", "u", "ok"].into_iter(), &[7]);
        other.add_client("10.0.0.2", "2024-01-01");
        other.add_client("10.0.0.1", "2024-01-01");
        t.merge(other);
        assert_eq!(t.rows(Table::Transfers)[0], (vec!["2024-01-01", "h", "u"], &[3, 21][..]));
        assert_eq!(t.rows(Table::Transfers)[4], (vec!["2024-01-03", "h", "u"], &[5, 50][..]));
        assert_eq!(t.rows(Table::Logins), [(vec!["2024-01-03", "h", "u", "ok"], &[7][..])]);
        assert_eq!(t.clients().len(), 3);
        assert_eq!(t.len(), 9);
        t.clear();
        assert!(t.is_empty());
    }
}
