"""Database backups: create, list, verify, restore, prune."""

from shiplane.backup.archive import create_backup, list_backups, prune_backups, restore_backup

__all__ = ["create_backup", "list_backups", "prune_backups", "restore_backup"]
