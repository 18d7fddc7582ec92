//! Importing a dbt project the user drops: a zip archive, or the files of a folder. The
//! project's root is the folder of its shallowest `dbt_project.yml`; only the files below it
//! that a project reads ([`ProjectFiles::wants`]) are taken (a zip's other entries are never
//! inflated), within Backfill's limits whatever sizes the archive declares.

use std::io::Cursor;

use crate::dbt::project::{ProjectFiles, read_text};
use crate::error::{Error, Result};
use crate::limits::Limit;

/// A project from a zip archive named `name`.
pub fn from_zip(name: &str, bytes: &[u8]) -> Result<ProjectFiles> {
    Limit::ProjectBytes.check(bytes.len() as u64, name)?;
    let unreadable = |e: zip::result::ZipError| Error::project(name, format!("cannot read the archive: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    // No zip tool writes this; a bomb does, so one entry's bytes unpack once per name.
    if archive.has_overlapping_files().map_err(unreadable)? {
        return Err(Error::project(name, "cannot read the archive: several of its files share the same bytes"));
    }
    // Zip tools on Windows may write backslashes between folders.
    let paths = (0..archive.len())
        .map(|i| archive.name_for_index(i).transpose().map(|name| name.unwrap_or_default().replace('\\', "/")))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    let mut left = Limit::ProjectBytes.max();
    let mut project = ProjectFiles::default();
    for (index, path, relative) in wanted(name, &paths)? {
        let place = format!("{name}: {path}");
        let entry = archive.by_index(index).map_err(|e| Error::project(&place, format!("cannot read the archive: {e}")))?;
        project.insert(relative, &read_text(entry, &mut left, &place)?);
    }
    Ok(project)
}

/// A project from files given by their paths (`/`-separated, as dropped or unpacked).
pub fn from_files(name: &str, files: Vec<(String, Vec<u8>)>) -> Result<ProjectFiles> {
    let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
    let mut left = Limit::ProjectBytes.max();
    let mut project = ProjectFiles::default();
    for (index, path, relative) in wanted(name, &paths)? {
        let bytes = files.get(index).map(|(_, bytes)| bytes.as_slice()).unwrap_or_default();
        project.insert(relative, &read_text(bytes, &mut left, &format!("{name}: {path}"))?);
    }
    Ok(project)
}

/// The files of `paths` a project reads, as (index, path, path from the project's root).
fn wanted<'a>(name: &str, paths: &'a [impl AsRef<str>]) -> Result<Vec<(usize, &'a str, &'a str)>> {
    let root = paths
        .iter()
        .map(AsRef::as_ref)
        .filter(|path| ProjectFiles::wants(path))
        .filter_map(|path| path.strip_suffix("dbt_project.yml").filter(|folder| folder.is_empty() || folder.ends_with('/')))
        .min_by_key(|folder| folder.matches('/').count())
        .ok_or_else(|| Error::project(name, "not a dbt project: it has no dbt_project.yml"))?;
    let wanted: Vec<_> = paths
        .iter()
        .map(AsRef::as_ref)
        .enumerate()
        .filter_map(|(index, path)| Some((index, path, path.strip_prefix(root).filter(|r| ProjectFiles::wants(r))?)))
        .collect();
    Limit::ProjectFiles.check(wanted.len() as u64, name)?;
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_project_says_so() {
        let error = from_files("notes", vec![("readme.md".into(), b"hi".to_vec())]).expect_err("no dbt_project.yml");
        assert_eq!(error.to_string(), "notes: not a dbt project: it has no dbt_project.yml");
        let error = from_zip("photo.zip", b"\xFF\xD8\xFF").expect_err("not a zip");
        assert!(error.to_string().starts_with("photo.zip: cannot read the archive: "), "{error}");
        let files = vec![("p/dbt_project.yml".into(), b"name: p".to_vec()), ("p/models/a.sql".into(), vec![0xFF, 0xFE])];
        let error = from_files("p", files).expect_err("binary model");
        assert!(error.to_string().contains("p/models/a.sql"), "{error}");
    }

    #[test]
    fn a_folder_import_takes_only_project_files_from_safe_paths() {
        let file = |path: &str| (path.to_string(), b"select 1".to_vec());
        let files = vec![
            ("p/dbt_project.yml".to_string(), b"name: p".to_vec()),
            file("p/models/a.sql"),
            file("p/models/x.py"),
            file("p/target/compiled/a.sql"),
            file("p/.venv/lib/macro.sql"),
            file("p/venv/lib/python3.12/site-packages/dbt/include/macro.sql"),
            file("p/node_modules/pkg/schema.yml"),
            file("p/models/../../escape.sql"),
            file("p/models\\..\\evil.sql"),
            file("p//models/b.sql"),
            // A nested project is not the root: the shallowest one is.
            file("p/sub/dbt_project.yml"),
        ];
        let project = from_files("p", files).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(project.0.keys().collect::<Vec<_>>(), ["dbt_project.yml", "models/a.sql", "sub/dbt_project.yml"]);
    }

    /// A stored or deflated entry written by hand, so an archive can lie about it.
    struct Local {
        name: &'static str,
        method: u16,
        packed: Vec<u8>,
        crc: u32,
        declared: u32,
    }

    impl Local {
        fn stored(name: &'static str, data: &[u8], declared: u32) -> Local {
            Local { name, method: 0, packed: data.to_vec(), crc: crc32(data), declared }
        }

        fn deflated(name: &'static str, data: &[u8], declared: u32) -> Local {
            use std::io::Write;
            let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            deflate.write_all(data).unwrap_or_else(|e| panic!("{e}"));
            let packed = deflate.finish().unwrap_or_else(|e| panic!("{e}"));
            Local { name, method: 8, packed, crc: crc32(data), declared }
        }
    }

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

    /// An archive of `locals`, whose directory lists (name, index of the local entry it points
    /// at): several names may point at one entry's bytes.
    fn archive(locals: &[Local], directory: &[(String, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for local in locals {
            offsets.push(out.len() as u32);
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&local.method.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0x21, 0]);
            out.extend_from_slice(&local.crc.to_le_bytes());
            out.extend_from_slice(&(local.packed.len() as u32).to_le_bytes());
            out.extend_from_slice(&local.declared.to_le_bytes());
            out.extend_from_slice(&(local.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(local.name.as_bytes());
            out.extend_from_slice(&local.packed);
        }
        let start = out.len() as u32;
        for (name, index) in directory {
            let local = &locals[*index];
            out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 3, 20, 0, 0, 0]);
            out.extend_from_slice(&local.method.to_le_bytes());
            out.extend_from_slice(&[0, 0, 0x21, 0]);
            out.extend_from_slice(&local.crc.to_le_bytes());
            out.extend_from_slice(&(local.packed.len() as u32).to_le_bytes());
            out.extend_from_slice(&local.declared.to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&(0o100644u32 << 16).to_le_bytes());
            out.extend_from_slice(&offsets[*index].to_le_bytes());
            out.extend_from_slice(name.as_bytes());
        }
        let size = out.len() as u32 - start;
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(directory.len() as u16).to_le_bytes());
        out.extend_from_slice(&(directory.len() as u16).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn a_zip_whose_files_share_their_bytes_is_refused() {
        // 1 MB of SQL stored once, declared as 1 byte, and listed under 1,000 names: 1 GB if each
        // name were copied in full.
        let sql = format!("select '{}'", "x".repeat(1 << 20));
        let locals = [Local::stored("p/dbt_project.yml", b"name: p\n", 8), Local::stored("p/models/m0.sql", sql.as_bytes(), 1)];
        let mut directory = vec![("p/dbt_project.yml".to_string(), 0)];
        directory.extend((0..1_000).map(|i| (format!("p/models/m{i}.sql"), 1)));
        let error = from_zip("bomb.zip", &archive(&locals, &directory)).expect_err("overlapping entries");
        assert_eq!(error, Error::project("bomb.zip", "cannot read the archive: several of its files share the same bytes"));
    }

    #[test]
    fn a_zip_bomb_stops_at_the_project_limit_whatever_its_entries_declare() {
        // 65 MB of spaces deflate to about 64 KB; the entry declares 4 GiB, and the one below 1 byte.
        let zeros = vec![b' '; (Limit::ProjectBytes.max() + 1_000_000) as usize];
        let locals = [Local::stored("p/dbt_project.yml", b"name: p\n", 8), Local::deflated("p/models/big.sql", &zeros, u32::MAX)];
        let zip = archive(&locals, &[("p/dbt_project.yml".into(), 0), ("p/models/big.sql".into(), 1)]);
        assert!(zip.len() < 1 << 20, "{}", zip.len());
        let error = from_zip("bomb.zip", &zip).expect_err("over the limit");
        assert_eq!(error, Limit::ProjectBytes.exceeded(None, "bomb.zip: p/models/big.sql"));
        let locals = [Local::stored("p/dbt_project.yml", b"name: p\n", 8), Local::deflated("p/models/big.sql", &zeros, 1)];
        let zip = archive(&locals, &[("p/dbt_project.yml".into(), 0), ("p/models/big.sql".into(), 1)]);
        let error = from_zip("bomb.zip", &zip).expect_err("over its declared size");
        assert_eq!(error, Error::project("bomb.zip: p/models/big.sql", "File is larger than its declared uncompressed size"));
    }

    #[test]
    fn declared_sizes_are_not_trusted_for_memory() {
        // A 4 GiB declaration: no buffer is sized from it (on wasm32 that alone overflowed).
        let locals = [Local::stored("p/dbt_project.yml", b"name: p\n", 8), Local::deflated("p/models/a.sql", b"select 1 as id", u32::MAX)];
        let zip = archive(&locals, &[("p/dbt_project.yml".into(), 0), ("p/models/a.sql".into(), 1)]);
        let project = from_zip("liar.zip", &zip);
        assert_eq!(project.map(|p| p.0.get("models/a.sql").cloned()), Ok(Some("select 1 as id".to_string())));
    }
}
