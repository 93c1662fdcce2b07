use std::fs::OpenOptions;
use std::io::Write;

use super::*;

fn small() -> JournalOptions {
    JournalOptions { segment_bytes: 200 }
}

fn replayed(dir: &Path, options: JournalOptions) -> (Journal, Vec<(u64, Vec<u8>)>) {
    let (journal, replay) = Journal::open(dir, options).unwrap();
    let records = replay.collect::<Result<Vec<_>, _>>().unwrap();
    (journal, records)
}

fn payload(i: u64) -> Vec<u8> {
    format!("record number {i}").into_bytes()
}

#[test]
fn synced_records_come_back_in_order_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, records) = replayed(dir.path(), small());
    assert!(records.is_empty());
    for i in 1..=30 {
        assert_eq!(journal.append(&payload(i)).unwrap(), i);
        if i % 4 == 0 {
            journal.sync().unwrap();
        }
    }
    journal.sync().unwrap();
    assert!(journal.segment_count() > 3, "{}", journal.segment_count());
    drop(journal);
    let (journal, records) = replayed(dir.path(), small());
    let expected: Vec<_> = (1..=30).map(|i| (i, payload(i))).collect();
    assert_eq!(records, expected);
    assert_eq!(journal.next_sequence(), 31);
}

#[test]
fn records_not_synced_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = replayed(dir.path(), JournalOptions::default());
    journal.append(b"kept").unwrap();
    journal.sync().unwrap();
    journal.append(b"never synced").unwrap();
    drop(journal);
    let (journal, records) = replayed(dir.path(), JournalOptions::default());
    assert_eq!(records, vec![(1, b"kept".to_vec())]);
    assert_eq!(journal.next_sequence(), 2);
}

#[test]
fn released_records_are_not_replayed_and_their_segments_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = replayed(dir.path(), small());
    for i in 1..=40 {
        journal.append(&payload(i)).unwrap();
        journal.sync().unwrap();
    }
    let before = journal.segment_count();
    journal.release(25).unwrap();
    assert!(journal.segment_count() < before);
    assert_eq!(journal.released(), 25);
    drop(journal);
    let (mut journal, records) = replayed(dir.path(), small());
    assert_eq!(records.first().map(|r| r.0), Some(26));
    assert_eq!(records.len(), 15);
    // Everything released: one segment stays, numbering goes on.
    journal.release(40).unwrap();
    assert_eq!(journal.segment_count(), 1);
    drop(journal);
    let (mut journal, records) = replayed(dir.path(), small());
    assert!(records.is_empty());
    assert_eq!(journal.append(b"next").unwrap(), 41);
}

#[test]
fn a_record_cut_short_by_a_crash_is_cut_off_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = replayed(dir.path(), JournalOptions::default());
    for i in 1..=3 {
        journal.append(&payload(i)).unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    let path = segment::path_of(dir.path(), 1);
    let full = fs::metadata(&path).unwrap().len();
    // Half a record more, as a crash in the middle of a write leaves it.
    let mut torn = Vec::new();
    segment::encode(&mut torn, 4, &payload(4)).unwrap();
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&torn[..torn.len() / 2]).unwrap();
    drop(file);
    let (mut journal, records) = replayed(dir.path(), JournalOptions::default());
    assert_eq!(records.len(), 3);
    assert_eq!(fs::metadata(&path).unwrap().len(), full);
    assert_eq!(journal.append(&payload(4)).unwrap(), 4);
    journal.sync().unwrap();
    drop(journal);
    let (_, records) = replayed(dir.path(), JournalOptions::default());
    assert_eq!(records.last(), Some(&(4, payload(4))));
}

#[test]
fn a_flipped_byte_in_the_last_record_loses_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = replayed(dir.path(), JournalOptions::default());
    journal.append(b"first").unwrap();
    journal.append(b"second").unwrap();
    journal.sync().unwrap();
    drop(journal);
    let path = segment::path_of(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let (_, records) = replayed(dir.path(), JournalOptions::default());
    assert_eq!(records, vec![(1, b"first".to_vec())]);
}

#[test]
fn damage_before_the_last_segment_is_an_error_not_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = replayed(dir.path(), small());
    for i in 1..=30 {
        journal.append(&payload(i)).unwrap();
        journal.sync().unwrap();
    }
    drop(journal);
    let path = segment::path_of(dir.path(), 1);
    let mut bytes = fs::read(&path).unwrap();
    bytes[segment::HEADER.len() + segment::RECORD_HEADER] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    let error = Journal::open(dir.path(), small()).unwrap_err();
    assert!(matches!(error, JournalError::Damaged { .. }), "{error}");
    // A missing segment in the middle, too.
    let dir = tempfile::tempdir().unwrap();
    let (mut journal, _) = replayed(dir.path(), small());
    for i in 1..=30 {
        journal.append(&payload(i)).unwrap();
        journal.sync().unwrap();
    }
    let second = journal.segments[1];
    drop(journal);
    fs::remove_file(segment::path_of(dir.path(), second)).unwrap();
    let error = Journal::open(dir.path(), small()).unwrap_err();
    assert!(error.to_string().contains("was due"), "{error}");
}
