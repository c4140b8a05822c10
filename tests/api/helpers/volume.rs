//! A small volume of its own for one test: a size-limited tmpfs that the test can fill up
//! or turn read-only under a running certgate, as a full or failing disk would.
//!
//! Mounting needs root (CI runs the tests as root). Elsewhere the tests that need a volume
//! skip with a notice, unless `CERTGATE_E2E=require`, which makes that a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub struct Volume {
    mount_point: TempDir,
}

impl Volume {
    /// A tmpfs of `size` (`mount`'s syntax: `8m`), or `None` where mounting is not allowed.
    pub fn mount(size: &str) -> Option<Self> {
        let mount_point = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(mount_point.path())
            .output()
            .is_ok_and(|output| output.status.success());
        if mounted {
            return Some(Self { mount_point });
        }
        assert!(
            std::env::var("CERTGATE_E2E").as_deref() != Ok("require"),
            "cannot mount a tmpfs (needs root) and CERTGATE_E2E=require"
        );
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        None
    }

    pub fn path(&self) -> &Path {
        self.mount_point.path()
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path().join("certgate.db").display())
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a file until the volume has no space left.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0xA5_u8; 64 * 1024];
        // Bounded: a volume of a few MiB fills long before this.
        for _ in 0..16_384 {
            if file
                .write_all(&chunk)
                .and_then(|()| file.sync_all())
                .is_err()
            {
                return;
            }
        }
        panic!("the volume never filled up");
    }

    /// Removes what [`Volume::fill`] wrote.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    pub fn remount(&self, option: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount,{option} failed");
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        // Lazy: a server of the test that still holds files open does not keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.mount_point.path())
            .status();
    }
}
