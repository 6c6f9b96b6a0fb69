package slot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keepslot/keepslot/internal/atomicfile"
)

// roleFile is the name of the file, in a node's state directory, that puts
// the node in the backup role.
const roleFile = "role"

const roleBackup = "backup"

// Role is a node's persistent backup role (the appliance's set-as-backup).
// Only a node in the backup role may be backed up; both the main backup and
// the sensitive backup check it. The role lives in a small file in the
// node's state directory, so it survives restarts and is shared by every
// program on the node that uses the same directory.
type Role struct {
	dir string
}

// NewRole returns the role kept in stateDir.
func NewRole(stateDir string) *Role { return &Role{dir: stateDir} }

// IsBackup reports whether the node is in the backup role.
func (r *Role) IsBackup() (bool, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, roleFile))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("slot: read the node's role: %w", err)
	}
	return strings.TrimSpace(string(b)) == roleBackup, nil
}

// Set puts the node in the backup role.
func (r *Role) Set() error {
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return fmt.Errorf("slot: set the backup role: %w", err)
	}
	if err := atomicfile.Write(filepath.Join(r.dir, roleFile), []byte(roleBackup+"\n")); err != nil {
		return fmt.Errorf("slot: set the backup role: %w", err)
	}
	return nil
}

// Unset takes the node out of the backup role.
func (r *Role) Unset() error {
	err := os.Remove(filepath.Join(r.dir, roleFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("slot: unset the backup role: %w", err)
	}
	return nil
}

// Check returns nil when the node is in the backup role and
// ErrNotBackupNode when it is not. Every Backupper, the sensitive one too,
// calls it first in Start.
func (r *Role) Check() error {
	ok, err := r.IsBackup()
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotBackupNode
	}
	return nil
}
