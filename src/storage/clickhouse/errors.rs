//! ClickHouse's errors, sorted into the kinds callers act on.
//!
//! A server error carries its numeric code (`Code: 395. DB::Exception: ...`),
//! which decides the kind: codes that refuse the data itself (it does not
//! parse, a constraint or `throwIf` fails) are [`StorageError::Rejected`],
//! so that the writer can isolate the events at fault; the row and time
//! limits of a read are [`StorageError::TooManyRows`] and
//! [`StorageError::TimedOut`]; codes that say our own statement is wrong are
//! [`StorageError::Internal`]; everything else (the network, memory, too many
//! parts, authentication, a missing table) is [`StorageError::Unavailable`]:
//! the events are fine, the server cannot take them now.

use std::time::Duration;

use crate::storage::StorageError;

/// Codes of errors in the data sent: the same rows fail again.
const DATA_CODES: [u32; 16] = [
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    128, // TOO_LARGE_ARRAY_SIZE
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
    469, // VIOLATED_CONSTRAINT
];

/// Codes of a statement that is wrong whatever the data: a defect here.
const STATEMENT_CODES: [u32; 9] = [
    10,  // NOT_FOUND_COLUMN_IN_BLOCK
    42,  // NUMBER_OF_ARGUMENTS_DOESNT_MATCH
    43,  // ILLEGAL_TYPE_OF_ARGUMENT
    46,  // UNKNOWN_FUNCTION
    47,  // UNKNOWN_IDENTIFIER
    62,  // SYNTAX_ERROR
    184, // ILLEGAL_AGGREGATION
    215, // NOT_AN_AGGREGATE
    386, // NO_COMMON_TYPE
];

/// `TOO_MANY_ROWS`: `max_rows_to_read` was reached.
const TOO_MANY_ROWS: u32 = 158;
/// `TIMEOUT_EXCEEDED`: `max_execution_time` was reached.
const TIMEOUT_EXCEEDED: u32 = 159;

/// The limits a read ran under, to name them when the server enforces one.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    pub timeout: Option<Duration>,
    pub max_rows: Option<u64>,
}

/// The server's error code in a response, if it names one.
pub(crate) fn server_code(text: &str) -> Option<u32> {
    let after = &text[text.find("Code:")? + "Code:".len()..];
    let digits: String = after
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Maps a client error on an operation described by `context`.
pub(crate) fn classify(
    context: &str,
    error: clickhouse::error::Error,
    limits: Limits,
) -> StorageError {
    use clickhouse::error::Error;
    let message = format!("ClickHouse {context}: {error}");
    match &error {
        Error::Network(_) | Error::TimedOut => StorageError::Unavailable(message),
        Error::BadResponse(text) => match server_code(text) {
            Some(TOO_MANY_ROWS) => StorageError::TooManyRows(limits.max_rows.unwrap_or(0)),
            Some(TIMEOUT_EXCEEDED) => {
                StorageError::TimedOut(limits.timeout.unwrap_or(Duration::ZERO))
            }
            Some(code) if DATA_CODES.contains(&code) => StorageError::Rejected(message),
            Some(code) if STATEMENT_CODES.contains(&code) => StorageError::Internal(message),
            _ => StorageError::Unavailable(message),
        },
        _ => StorageError::Internal(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clickhouse::error::Error;

    fn kind(text: &str) -> StorageError {
        classify(
            "inserting",
            Error::BadResponse(text.into()),
            Limits {
                timeout: Some(Duration::from_secs(3)),
                max_rows: Some(10),
            },
        )
    }

    #[test]
    fn codes_decide_the_kind() {
        assert_eq!(
            server_code("Code: 395. DB::Exception: Value passed to 'throwIf' function is non zero"),
            Some(395)
        );
        assert_eq!(server_code("bad gateway"), None);
        assert!(matches!(
            kind("Code: 395. DB::Exception: Value passed to 'throwIf' function is non zero"),
            StorageError::Rejected(_)
        ));
        assert!(matches!(
            kind("Code: 241. DB::Exception: Memory limit (for query) exceeded"),
            StorageError::Unavailable(_)
        ));
        assert!(matches!(
            kind("Code: 516. DB::Exception: default: Authentication failed"),
            StorageError::Unavailable(_)
        ));
        assert!(matches!(
            kind("Code: 62. DB::Exception: Syntax error"),
            StorageError::Internal(_)
        ));
        assert!(matches!(
            kind("Code: 158. DB::Exception: Limit for rows to read exceeded"),
            StorageError::TooManyRows(10)
        ));
        assert!(matches!(
            kind("Code: 159. DB::Exception: Timeout exceeded: elapsed 3.1 seconds"),
            StorageError::TimedOut(timeout) if timeout == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify("querying", Error::TimedOut, Limits::default()),
            StorageError::Unavailable(_)
        ));
    }
}
