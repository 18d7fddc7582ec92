//! Importing a dbt project the user drops: a zip archive, or the files of a folder. The
//! project's root is the folder of its shallowest `dbt_project.yml`; the files a project reads
//! (see [`ProjectFiles::wants`]) are taken from below it.

use crate::error::{Error, Result};
use crate::project::ProjectFiles;
use crate::zip;

/// A project from a zip archive named `name`.
pub fn from_zip(name: &str, bytes: &[u8]) -> Result<ProjectFiles> {
    let entries = zip::entries(bytes).map_err(|e| Error::project(name, format!("cannot read the archive: {e}")))?;
    from_files(name, entries)
}

/// A project from files given by their paths (`/`-separated, as dropped or unpacked).
pub fn from_files(name: &str, files: Vec<(String, Vec<u8>)>) -> Result<ProjectFiles> {
    let root = files
        .iter()
        .filter_map(|(path, _)| path.strip_suffix("dbt_project.yml").filter(|p| p.is_empty() || p.ends_with('/')))
        .filter(|folder| !folder.split('/').any(|f| f.starts_with('.') || f == "dbt_packages"))
        .min_by_key(|folder| folder.matches('/').count())
        .map(str::to_string)
        .ok_or_else(|| Error::project(name, "not a dbt project: it has no dbt_project.yml"))?;
    let mut project = ProjectFiles::default();
    for (path, bytes) in files {
        let Some(relative) = path.strip_prefix(root.as_str()) else { continue };
        if !ProjectFiles::wants(relative) {
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|_| Error::project(format!("{name}: {path}"), "is not UTF-8 text"))?;
        project.insert(relative, &text);
    }
    Ok(project)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::project_zip;
    use crate::project::{LESSON, builtin};

    #[test]
    fn an_exported_project_imports_as_the_same_project() {
        let lesson = builtin(LESSON).unwrap_or_else(|e| panic!("{e}"));
        let zip = project_zip(&lesson, "2023-03-01").unwrap_or_else(|e| panic!("{e}"));
        let files = from_zip("backfill-dbt-project.zip", &zip).unwrap_or_else(|e| panic!("{e}"));
        assert!(files.0.contains_key("models/marts/daily_metrics.sql"));
        // The root is analytics/, not its local package analytics/dbt_utils/.
        assert_eq!(files.0.get("dbt_project.yml"), lesson.files.0.get("dbt_project.yml"));
        let imported = files.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(imported.models.keys().collect::<Vec<_>>(), lesson.models.keys().collect::<Vec<_>>());
        assert_eq!(imported.model("daily_metrics").map(|m| &m.sql), lesson.model("daily_metrics").map(|m| &m.sql));
    }

    #[test]
    fn what_is_not_a_project_says_so() {
        let error = from_files("notes", vec![("readme.md".into(), b"hi".to_vec())]).expect_err("no dbt_project.yml");
        assert_eq!(error.to_string(), "notes: not a dbt project: it has no dbt_project.yml");
        let error = from_zip("photo.zip", b"\xFF\xD8\xFF").expect_err("not a zip");
        assert_eq!(error.to_string(), "photo.zip: cannot read the archive: not a zip archive");
        let files = vec![("p/dbt_project.yml".into(), b"name: p".to_vec()), ("p/models/a.sql".into(), vec![0xFF, 0xFE])];
        let error = from_files("p", files).expect_err("binary model");
        assert!(error.to_string().contains("p/models/a.sql"), "{error}");
    }
}
