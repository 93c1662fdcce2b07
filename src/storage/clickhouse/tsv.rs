//! Reading ClickHouse's `TabSeparated` output, the one text format that every
//! server version writes the same way.

/// One field: `None` for `\N` (NULL), else the unescaped text.
pub type Field = Option<String>;

/// Splits `TabSeparated` output into rows of fields.
pub fn parse(body: &[u8]) -> Result<Vec<Vec<Field>>, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("result is not UTF-8: {e}"))?;
    text.split_terminator('\n')
        .map(|line| line.split('\t').map(field).collect())
        .collect()
}

fn field(raw: &str) -> Result<Field, String> {
    if raw == "\\N" {
        return Ok(None);
    }
    if !raw.contains('\\') {
        return Ok(Some(raw.to_owned()));
    }
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        text.push(match chars.next() {
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('r') => '\r',
            Some('n') => '\n',
            Some('t') => '\t',
            Some('0') => '\0',
            Some('a') => '\u{7}',
            Some('v') => '\u{b}',
            Some(other) => other,
            None => return Err(format!("field {raw:?} ends in a lone backslash")),
        });
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_escapes_and_empty_fields_are_read() {
        let rows = parse(b"a\\tb\t\\N\t\nx\\\\y\\n\t1\t2\n").unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("a\tb".into()), None, Some(String::new())],
                vec![Some("x\\y\n".into()), Some("1".into()), Some("2".into())],
            ]
        );
        assert!(parse(b"").unwrap().is_empty());
        assert!(parse(b"bad\\\n").is_err());
    }
}
