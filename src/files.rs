//! Files that must never be seen half-written: keys and certificates.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes through a temporary file in the same directory, synced and renamed over `path`, so
/// a reader (or a crash) never sees half a file. The mode is set before any byte is written.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut staged = StagedFiles::default();
    staged.stage(path, contents, mode)?;
    staged.commit()
}

/// A set of files replaced together: every new file is written and synced beside its
/// target first, and only then are they renamed into place, one after the other. Until
/// `commit`, the old files stay untouched; a failure at any point before it leaves them as
/// they were (the temporaries are removed when the set is dropped).
#[derive(Default)]
pub struct StagedFiles {
    /// (temporary, target) in the order they were staged.
    files: Vec<(PathBuf, PathBuf)>,
}

impl StagedFiles {
    pub fn stage(&mut self, path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
        let temporary = directory_of(path).join(format!(
            ".{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
            std::process::id()
        ));
        let written = (|| {
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&temporary)?;
            file.write_all(contents)?;
            file.sync_all()
        })();
        match written {
            Ok(()) => {
                self.files.push((temporary, path.to_path_buf()));
                Ok(())
            }
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                Err(error)
            }
        }
    }

    /// Renames every staged file over its target, in the order staged, and syncs the
    /// directories so the renames survive a crash.
    pub fn commit(mut self) -> io::Result<()> {
        let files = std::mem::take(&mut self.files);
        for (index, (temporary, target)) in files.iter().enumerate() {
            if let Err(error) = fs::rename(temporary, target) {
                for (left, _) in &files[index..] {
                    let _ = fs::remove_file(left);
                }
                return Err(error);
            }
        }
        let mut synced: Vec<&Path> = Vec::new();
        for (_, target) in &files {
            let dir = directory_of(target);
            if !synced.contains(&dir) {
                fs::File::open(dir)?.sync_all()?;
                synced.push(dir);
            }
        }
        Ok(())
    }
}

impl Drop for StagedFiles {
    fn drop(&mut self) {
        for (temporary, _) in &self.files {
            let _ = fs::remove_file(temporary);
        }
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_the_file_with_the_requested_mode_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn staged_files_replace_nothing_until_committed_and_nothing_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("agent.key");
        let cert = dir.path().join("agent.crt");
        fs::write(&key, "old key").unwrap();
        fs::write(&cert, "old cert").unwrap();

        let mut abandoned = StagedFiles::default();
        abandoned.stage(&key, b"new key", 0o600).unwrap();
        abandoned.stage(&cert, b"new cert", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&key).unwrap(), "old key");
        drop(abandoned);
        assert_eq!(fs::read_to_string(&key).unwrap(), "old key");
        assert_eq!(fs::read_to_string(&cert).unwrap(), "old cert");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporary left"
        );

        let mut staged = StagedFiles::default();
        staged.stage(&key, b"new key", 0o600).unwrap();
        staged.stage(&cert, b"new cert", 0o644).unwrap();
        staged.commit().unwrap();
        assert_eq!(fs::read_to_string(&key).unwrap(), "new key");
        assert_eq!(fs::read_to_string(&cert).unwrap(), "new cert");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
