//! Zip archives, minimally. Writing: stored (uncompressed) entries, which every unzip tool
//! reads; exported projects are small text files, so compression would buy little. Reading:
//! stored and deflated entries, which is what zip tools and browsers write.

use std::io::Read;

/// An archive's contents may not grow past this when inflated (a zip bomb stops here).
const MAX_UNPACKED: u64 = 64 << 20;

/// The files of a zip archive (path, bytes), folders left out, in directory order.
pub fn entries(zip: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let u16_at = |at: usize| zip.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize).ok_or("the archive is cut short");
    let u32_at = |at: usize| zip.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize).ok_or("the archive is cut short");
    // The end-of-central-directory record is in the last 64 KiB + 22 bytes.
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .take(65_557)
        .find(|&i| zip[i..].starts_with(&0x0605_4b50u32.to_le_bytes()))
        .ok_or("not a zip archive")?;
    let count = u16_at(end + 10)?;
    let mut at = u32_at(end + 16)?;
    let (mut out, mut unpacked) = (Vec::with_capacity(count), 0u64);
    for _ in 0..count {
        if u32_at(at)? != 0x0201_4b50 {
            return Err("its directory is damaged".into());
        }
        let (method, packed, size) = (u16_at(at + 10)?, u32_at(at + 20)?, u32_at(at + 24)?);
        let (name_len, extra_len, comment_len, local) = (u16_at(at + 28)?, u16_at(at + 30)?, u16_at(at + 32)?, u32_at(at + 42)?);
        let name = zip.get(at + 46..at + 46 + name_len).ok_or("the archive is cut short")?;
        let name = String::from_utf8_lossy(name).replace('\\', "/");
        at += 46 + name_len + extra_len + comment_len;
        if name.ends_with('/') {
            continue;
        }
        let data_at = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = zip.get(data_at..data_at + packed).ok_or_else(|| format!("{name}: the archive is cut short"))?;
        unpacked += size as u64;
        if unpacked > MAX_UNPACKED {
            return Err(format!("it unpacks to more than {} MB", MAX_UNPACKED >> 20));
        }
        let bytes = match method {
            0 => data.to_vec(),
            8 => {
                let mut bytes = Vec::with_capacity(size);
                flate2::read::DeflateDecoder::new(data)
                    .take(size as u64)
                    .read_to_end(&mut bytes)
                    .map_err(|e| format!("{name}: {e}"))?;
                bytes
            }
            other => return Err(format!("{name}: compression method {other} is not supported (use a standard zip)")),
        };
        out.push((name, bytes));
    }
    Ok(out)
}

/// The zip archive of `files` (path → bytes), in the given order.
pub fn stored(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (path, bytes) in files {
        let offset = out.len() as u32;
        let crc = crc32(bytes);
        let size = bytes.len() as u32;
        // Local file header: version 2.0, UTF-8 names (flag bit 11), stored, no timestamp.
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0x08, 0, 0, 0, 0, 0x21, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(path.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(bytes);
        // Its central directory record.
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 3, 20, 0, 0, 0x08, 0, 0, 0, 0, 0x21, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&size.to_le_bytes());
        central.extend_from_slice(&(path.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 8]);
        // External attributes: a regular file, rw-r--r--.
        central.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(path.as_bytes());
    }
    let directory_offset = out.len() as u32;
    let entries = files.len() as u16;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// CRC-32 (IEEE), as zip requires.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn layout_has_headers_directory_and_end_record() {
        let zip = stored(&[("a.txt".into(), b"hi".to_vec())]);
        assert_eq!(&zip[..4], b"PK\x03\x04");
        // 30-byte local header + name + data, 46-byte central record + name, 22-byte end record.
        assert_eq!(zip.len(), 30 + 5 + 2 + 46 + 5 + 22);
        assert_eq!(&zip[zip.len() - 22..zip.len() - 18], b"PK\x05\x06");
    }

    #[test]
    fn written_archives_read_back_and_damaged_ones_say_so() {
        let files = vec![("p/dbt_project.yml".to_string(), b"name: p\n".to_vec()), ("p/models/a.sql".to_string(), b"select 1".to_vec())];
        let zip = stored(&files);
        assert_eq!(entries(&zip), Ok(files));
        assert_eq!(entries(b"PK\x03\x04 not really"), Err("not a zip archive".to_string()));
        assert!(entries(&zip[..zip.len() - 30]).is_err());
    }
}
