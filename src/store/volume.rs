//! Whether the file system holding the SQLite database can take a write, asked without
//! writing: a full or read-only volume makes every write fail, and SQLite only says so
//! when one is tried.

use std::path::Path;

use rustix::fs::StatVfsMountFlags;

use super::StoreError;

/// Below this much free space a volume counts as full: an enrolment appends a few pages to
/// the write-ahead log, and a checkpoint needs room to grow the database file.
pub const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// What `statvfs` says about a volume.
#[derive(Debug, Clone, Copy)]
struct Room {
    read_only: bool,
    free_bytes: u64,
    /// `None` where the file system does not count inodes.
    free_inodes: Option<u64>,
}

/// Whether the directory `dir` (the database's) is on a volume with room for a write.
pub fn check(dir: &Path) -> Result<(), StoreError> {
    let stat = rustix::fs::statvfs(dir).map_err(|error| {
        StoreError::Unavailable(std::sync::Arc::new(sqlx::Error::Io(error.into())))
    })?;
    judge(
        dir,
        Room {
            read_only: stat.f_flag.contains(StatVfsMountFlags::RDONLY),
            free_bytes: stat.f_bavail.saturating_mul(stat.f_frsize),
            free_inodes: (stat.f_files > 0).then_some(stat.f_favail),
        },
    )
}

fn judge(dir: &Path, room: Room) -> Result<(), StoreError> {
    if room.read_only {
        return Err(StoreError::ReadOnly(format!(
            "{} is on a read-only file system",
            dir.display()
        )));
    }
    if room.free_bytes < MIN_FREE_BYTES {
        return Err(StoreError::Full(format!(
            "{} has {} KiB free (at least {} KiB are needed)",
            dir.display(),
            room.free_bytes / 1024,
            MIN_FREE_BYTES / 1024
        )));
    }
    if room.free_inodes == Some(0) {
        return Err(StoreError::Full(format!(
            "{} has no free inodes",
            dir.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: Room = Room {
        read_only: false,
        free_bytes: 10 * MIN_FREE_BYTES,
        free_inodes: Some(1000),
    };

    fn verdict(room: Room) -> Result<(), StoreError> {
        judge(Path::new("/srv/certgate"), room)
    }

    #[test]
    fn a_roomy_writable_volume_passes() {
        assert!(verdict(ROOMY).is_ok());
        assert!(
            verdict(Room {
                free_inodes: None,
                ..ROOMY
            })
            .is_ok(),
            "inodes not counted"
        );
        assert!(
            verdict(Room {
                free_bytes: MIN_FREE_BYTES,
                ..ROOMY
            })
            .is_ok()
        );
    }

    #[test]
    fn read_only_wins_and_names_the_directory() {
        let error = verdict(Room {
            read_only: true,
            free_bytes: 0,
            ..ROOMY
        })
        .unwrap_err();
        assert!(
            matches!(&error, StoreError::ReadOnly(message) if message.contains("/srv/certgate"))
        );
    }

    #[test]
    fn too_little_space_or_no_inodes_is_full() {
        let error = verdict(Room {
            free_bytes: MIN_FREE_BYTES - 1,
            ..ROOMY
        })
        .unwrap_err();
        assert!(
            matches!(&error, StoreError::Full(message) if message.contains("1023 KiB free")),
            "{error}"
        );
        assert!(matches!(
            verdict(Room {
                free_inodes: Some(0),
                ..ROOMY
            }),
            Err(StoreError::Full(_))
        ));
    }

    #[test]
    fn the_real_temporary_directory_can_be_asked() {
        let dir = tempfile::tempdir().unwrap();
        // Whatever its room, asking works and names no I/O failure.
        assert!(!matches!(
            check(dir.path()),
            Err(StoreError::Unavailable(_))
        ));
    }
}
