//! Offline restores in the containers: `dlp-node --restore` (under strace for `crash_restore`)
//! started by the node's own container's init while no node process runs there, its output
//! appended to the node's `restore.log`. A home or a backup on a size-limited mount that the
//! node's container cannot see (it is older than the mount) is restored in a private container
//! made for it.

use std::io::Write;
use std::path::Path;

use super::{ContainerDriver, Digests, NodeSpec, exec, image};
use crate::error::HarnessError;

/// How long an offline restore may take.
const RESTORE_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

impl ContainerDriver {
    /// `dlp-node --restore` of `spec`'s home from `backup`.
    pub(super) fn restore_command(
        &self,
        spec: &NodeSpec,
        backup: &Path,
        digests: Digests,
    ) -> Result<Vec<String>, HarnessError> {
        let (home, backup) = (
            self.visible(&spec.name, &spec.home)?,
            self.visible(&spec.name, backup)?,
        );
        let mut command = vec![image::node_bin(&spec.build)];
        command.extend(
            super::super::dlp_node::restore_args(spec.build.dialect(), &home, &backup, digests)?
                .into_iter()
                .map(|a| a.to_string_lossy().into_owned()),
        );
        Ok(command)
    }

    /// Run a restore `command` of `spec`'s node from `backup` in the node's container, or, when
    /// the home or the backup is on a size-limited mount that container cannot see (it is older
    /// than the mount), in a private container made for it; its output is appended to the
    /// node's `restore.log`.
    pub(super) async fn exec_logged(
        &mut self,
        spec: &NodeSpec,
        backup: &Path,
        command: Vec<String>,
    ) -> Result<(Option<i64>, String), HarnessError> {
        let on_limited = self
            .limited
            .iter()
            .any(|dir| backup.starts_with(dir) || dir.starts_with(&spec.home));
        let mounts = self.limited.len();
        let host = self.host_of(spec).await?;
        let (code, output) = if on_limited && host.sees_mounts < mounts {
            let once = self
                .new_host(&format!("{}-restore", spec.name), true)
                .await?;
            let result = exec::run(&once.socket, once.pid, command, RESTORE_WITHIN).await;
            self.pool()?.release(once, false).await;
            result?
        } else {
            exec::run(&host.socket, host.pid, command, RESTORE_WITHIN).await?
        };
        let log = spec.home.join("restore.log");
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
        {
            let _ = file.write_all(output.as_bytes());
        }
        Ok((code, output))
    }
}
