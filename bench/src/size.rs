//! Object sizes as users write them on the command line: `4096`, `4K`,
//! `1M`, `1G` (binary multiples, as swift-bench and `dd` read them).

/// The largest object size accepted: Swift's default `max_file_size`
/// (5 GiB + 2 bytes). Anything larger would be refused by every cluster
/// with default constraints, and the payload is held in memory.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 + 2;

/// Parses a byte count with an optional binary suffix: `K`/`KB`/`KiB`
/// (1024), `M`/`MB`/`MiB`, `G`/`GB`/`GiB`, or `B`; case-insensitive.
/// The error is a one-line reason fit for a usage message.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits_end);
    let bad = || format!("{text:?} is not a size: expected whole bytes with an optional K, M or G suffix (e.g. 0, 4096, 4K, 1M, 1G)");
    if number.is_empty() {
        return Err(bad());
    }
    let multiplier: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let too_big = || format!("{text:?} is larger than Swift's maximum object size ({MAX_OBJECT_SIZE} bytes)");
    let n: u64 = number.parse().map_err(|_| too_big())?;
    let size = n.checked_mul(multiplier).ok_or_else(too_big)?;
    if size > MAX_OBJECT_SIZE {
        return Err(too_big());
    }
    Ok(size)
}

/// Formats a byte count for humans (`4 KiB`, `1.5 MiB`, `17 B`).
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, scale) in UNITS {
        if bytes >= scale {
            let v = bytes as f64 / scale as f64;
            // Scales are powers of two: a whole multiple has no low bits set.
            return if bytes & (scale - 1) == 0 { format!("{} {unit}", bytes / scale) } else { format!("{v:.2} {unit}") };
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1mb"), Ok(1 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("5G"), Ok(5 << 30));
        assert_eq!(parse_size("12B"), Ok(12));
    }

    #[test]
    fn bad_sizes_are_refused() {
        for bad in ["", "K", "-1", "1.5M", "4X", "4 K", "1T", "6G", "99999999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("4X").unwrap_err().contains("not a size"));
        assert!(parse_size("6G").unwrap_err().contains("maximum object size"));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(4096), "4 KiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(1536 * 1024), "1.50 MiB");
    }
}
