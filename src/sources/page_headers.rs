//! Checks every page header of a Parquet file before the parquet crate reads its pages.
//!
//! The crate (59.x) decodes page headers from a `Read` whose skips do not fail at the end of the
//! data, and it loops over declared list sizes without reading: a 8 KB file with a forged list
//! nested in a header makes it skip billions of times (minutes in the tab). Each header is first
//! walked here, over the bytes of its column chunk only: every element of a Thrift list takes at
//! least one byte, so no declared size can make this walk longer than the chunk.

use datafusion::parquet::file::metadata::ParquetMetaData;

/// Thrift structs nested deeper than this are refused (the parquet crate's own skip depth).
const MAX_DEPTH: u8 = 64;
/// `PageHeader.compressed_page_size`, the field that says where the next header starts.
const COMPRESSED_PAGE_SIZE: i16 = 3;

/// The first damaged page header of `file`, as a sentence naming its column and byte offset.
pub fn check(file: &[u8], metadata: &ParquetMetaData) -> Result<(), String> {
    for group in metadata.row_groups() {
        for column in group.columns() {
            let (start, length) = column.byte_range();
            let chunk = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start.saturating_add(length)).ok())
                .and_then(|(start, end)| file.get(start..end).map(|chunk| (start, chunk)));
            let Some((start, chunk)) = chunk else {
                return Err(format!("column {} lies past the end of the file", column.column_path()));
            };
            check_chunk(chunk).map_err(|(offset, what)| {
                format!("column {}: the page header at byte {} {what}", column.column_path(), start + offset)
            })?;
        }
    }
    Ok(())
}

/// Walks a column chunk's pages; an error is the header's offset in the chunk and what is wrong.
fn check_chunk(chunk: &[u8]) -> Result<(), (usize, &'static str)> {
    let mut offset = 0;
    while offset < chunk.len() {
        let mut header = Thrift { bytes: &chunk[offset..], read: 0 };
        let size = header.page_header().map_err(|what| (offset, what))?;
        let size = usize::try_from(size).map_err(|_| (offset, "has a negative page size"))?;
        offset = offset.saturating_add(header.read).saturating_add(size);
    }
    Ok(())
}

/// Thrift's compact protocol over a slice: reading past its end is an error.
struct Thrift<'a> {
    bytes: &'a [u8],
    read: usize,
}

impl Thrift<'_> {
    /// Reads a `PageHeader` struct; returns its compressed page size.
    fn page_header(&mut self) -> Result<i32, &'static str> {
        let mut size = None;
        let mut field = 0i16;
        loop {
            let header = self.byte()?;
            let kind = header & 0x0f;
            if kind == 0 {
                return size.ok_or("has no page size");
            }
            field = match header >> 4 {
                0 => zigzag(self.varint()?) as i16,
                delta => field.wrapping_add(i16::from(delta)),
            };
            match (field, kind) {
                (COMPRESSED_PAGE_SIZE, 5) => size = Some(zigzag(self.varint()?) as i32),
                _ => self.skip(kind, MAX_DEPTH, false)?,
            }
        }
    }

    /// Skips a value of compact type `kind`. A bool's value is in its field header, but takes a
    /// byte of its own as an element of a list, set or map.
    fn skip(&mut self, kind: u8, depth: u8, element: bool) -> Result<(), &'static str> {
        let depth = depth.checked_sub(1).ok_or("nests too deep")?;
        match kind {
            1 | 2 if !element => Ok(()),
            1..=3 => self.advance(1),
            4..=6 => self.varint().map(drop),
            7 => self.advance(8),
            8 => {
                let length = usize::try_from(self.varint()?).map_err(|_| "runs past its column chunk")?;
                self.advance(length)
            }
            9 | 10 => {
                let header = self.byte()?;
                let size = match header >> 4 {
                    15 => self.varint()?,
                    size => u64::from(size),
                };
                self.elements(size)?;
                (0..size).try_for_each(|_| self.skip(header & 0x0f, depth, true))
            }
            11 => {
                let size = self.varint()?;
                if size == 0 {
                    return Ok(());
                }
                let kinds = self.byte()?;
                self.elements(size.saturating_mul(2))?;
                (0..size).try_for_each(|_| {
                    self.skip(kinds >> 4, depth, true)?;
                    self.skip(kinds & 0x0f, depth, true)
                })
            }
            12 => loop {
                let header = self.byte()?;
                if header & 0x0f == 0 {
                    return Ok(());
                }
                if header >> 4 == 0 {
                    self.varint()?;
                }
                self.skip(header & 0x0f, depth, false)?;
            },
            13 => self.advance(16),
            _ => Err("has a value of unknown type"),
        }
    }

    /// Each element takes at least a byte: more elements than bytes left is damage, found
    /// before looping over them.
    fn elements(&self, count: u64) -> Result<(), &'static str> {
        match usize::try_from(count) {
            Ok(count) if count <= self.bytes.len() => Ok(()),
            _ => Err("declares more values than its column chunk holds"),
        }
    }

    fn byte(&mut self) -> Result<u8, &'static str> {
        let (&first, rest) = self.bytes.split_first().ok_or("runs past its column chunk")?;
        self.bytes = rest;
        self.read += 1;
        Ok(first)
    }

    fn advance(&mut self, count: usize) -> Result<(), &'static str> {
        self.bytes = self.bytes.get(count..).ok_or("runs past its column chunk")?;
        self.read += count;
        Ok(())
    }

    /// An unsigned LEB128 varint of at most ten bytes.
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("has an integer longer than ten bytes")
    }
}

fn zigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data page header: type 0, uncompressed size 10, compressed `size`, and `extra` fields.
    fn header(size: u8, extra: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x15, 0x00, 0x15, 20, 0x15, size * 2];
        bytes.extend_from_slice(extra);
        bytes.push(0);
        bytes
    }

    #[test]
    fn pages_are_walked_to_the_end_of_the_chunk() {
        let mut chunk = header(3, &[]);
        chunk.extend_from_slice(&[7, 7, 7]);
        chunk.extend(header(0, &[]));
        assert_eq!(check_chunk(&chunk), Ok(()));
        assert_eq!(check_chunk(&chunk[..chunk.len() - 1]), Err((10, "runs past its column chunk")));
    }

    #[test]
    fn a_forged_list_size_is_refused_before_looping_over_it() {
        // Field 9 (delta 6), a list of 2^31 doubles, in a chunk of a few bytes.
        let list = [0x69, 0xf7, 0x80, 0x80, 0x80, 0x80, 0x08];
        assert_eq!(check_chunk(&header(0, &list)), Err((0, "declares more values than its column chunk holds")));
        // Lists nested 100 deep, each of one element.
        let nested: Vec<u8> = [0x69].into_iter().chain(std::iter::repeat_n(0x19, 100)).collect();
        assert_eq!(check_chunk(&header(0, &nested)), Err((0, "nests too deep")));
    }

    #[test]
    fn a_header_without_a_size_or_with_a_negative_one_is_damage() {
        assert_eq!(check_chunk(&[0x15, 0x00, 0x00]), Err((0, "has no page size")));
        assert_eq!(check_chunk(&[0x35, 0x01, 0x00]), Err((0, "has a negative page size")));
    }
}
