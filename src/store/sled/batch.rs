//! How the writer applies a group of commits so that it is all there after a crash, or none
//! of it: the group's keys are first recorded as one value, then written one by one, the
//! commit count last.
//!
//! sled's own atomic `apply_batch` is not used for this: to make a batch atomic it writes out
//! its log buffer twice per batch, each time waking every idle I/O thread it keeps (seven):
//! those threads took 13–24 % of the CPU of a write under load, 3 % without it, and the
//! context switches per write halved. A single insert is atomic, and sled recovers a prefix
//! of its log (it reads it in order up to the first message missing or torn), so after a
//! crash either the record is missing and so is every key written after it, or the record is
//! there with some of its keys. Opening the store applies the record
//! again when the commit count it ends with is ahead of the stored one; its keys are values
//! to set or remove, so applying them twice changes nothing.

/// Keys to set (`Some`) or remove (`None`), in order; a later one wins.
#[derive(Default)]
pub(super) struct Ops(pub(super) Vec<(Vec<u8>, Option<Vec<u8>>)>);

/// The tree that holds the record, apart from the records and the log so that rewriting it
/// does not rewrite their nodes.
pub(super) const TREE: &[u8] = b"batch";
/// The record's key in [`TREE`].
pub(super) const KEY: &[u8] = b"applying";
/// Recorded bytes past which the writer takes no more commits into a group: sled writes an
/// update of more than a quarter of its 512 KiB log segment into a file of its own.
pub(super) const BYTES_MAX: usize = 48 * 1024;

const VERSION: u8 = 1;

impl Ops {
    pub(super) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push((key.into(), Some(value.into())));
    }

    pub(super) fn remove(&mut self, key: impl Into<Vec<u8>>) {
        self.0.push((key.into(), None));
    }

    /// Bytes the record of these keys takes.
    pub(super) fn size(&self) -> usize {
        self.0
            .iter()
            .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, Vec::len))
            .sum()
    }

    pub(super) fn add_to(self, batch: &mut sled::Batch) {
        for (key, value) in self.0 {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
    }

    /// The record: a version byte, then per key its length (4 bytes, little-endian), the key,
    /// 1 and the value's length and the value to set it, or 0 to remove it.
    pub(super) fn record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.size());
        out.push(VERSION);
        for (key, value) in &self.0 {
            put_bytes(&mut out, key);
            match value {
                Some(value) => {
                    out.push(1);
                    put_bytes(&mut out, value);
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Reads a record back; `None` when it is not one this version wrote.
    pub(super) fn from_record(mut bytes: &[u8]) -> Option<Ops> {
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION {
            return None;
        }
        bytes = rest;
        let mut ops = Ops::default();
        while !bytes.is_empty() {
            let key = take_bytes(&mut bytes)?;
            let (&kind, rest) = bytes.split_first()?;
            bytes = rest;
            let value = match kind {
                0 => None,
                1 => Some(take_bytes(&mut bytes)?),
                _ => return None,
            };
            ops.0.push((key, value));
        }
        Some(ops)
    }

    /// Writes the keys one by one, in order.
    pub(super) fn write(self, db: &sled::Db) -> sled::Result<()> {
        for (key, value) in self.0 {
            match value {
                Some(value) => db.insert(key, value)?,
                None => db.remove(key)?,
            };
        }
        Ok(())
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Keys and values are far below 4 GiB: a commit is bounded by the request body limit.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_bytes(bytes: &mut &[u8]) -> Option<Vec<u8>> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    *bytes = rest;
    Some(value.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ops {
        let mut ops = Ops::default();
        ops.insert(b"p:A".to_vec(), b"{}".to_vec());
        ops.remove(b"p:B".to_vec());
        ops.insert(b"".to_vec(), b"".to_vec());
        ops.insert(b"s:commits".to_vec(), 7u64.to_be_bytes().to_vec());
        ops
    }

    #[test]
    fn a_record_reads_back_as_the_keys_it_was_made_of() {
        let ops = sample();
        let record = ops.record();
        assert!(record.len() <= 1 + ops.size());
        let back = Ops::from_record(&record).expect("a record");
        assert_eq!(back.0, ops.0);
    }

    #[test]
    fn a_cut_or_altered_record_is_refused_not_misread() {
        let record = sample().record();
        for len in 0..record.len() {
            let cut = Ops::from_record(&record[..len]);
            // A cut at a key's end reads as fewer keys; anywhere else it is refused.
            if let Some(ops) = cut {
                assert!(ops.0.len() < 4, "cut at {len} read as the whole record");
            }
        }
        let mut other_version = record.clone();
        other_version[0] = 2;
        assert!(Ops::from_record(&other_version).is_none());
        let mut bad_kind = record.clone();
        bad_kind[1 + 4 + 3] = 7;
        assert!(Ops::from_record(&bad_kind).is_none());
    }
}
