package slot

import (
	"fmt"
	"log/slog"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/store"
)

// Config says where a Slot's backups go and how they are made. Store and
// StateDir are required; every other field has a default.
type Config struct {
	// Store is the slot the backup is written to. A store that reports
	// its free space ([store.SpaceReporter], as store.Dir does) is held
	// to the rule that twice the data must be free.
	Store store.Store

	// StateDir holds the node's Role and the last backup's state; it is
	// created (0700) if missing.
	StateDir string

	// StateFile names the file in StateDir that records the last backup's
	// state; default [DefaultStateFile]. Slots that share a StateDir need
	// different ones.
	StateFile string

	// NamePrefix starts the stored backup's name; default "backup-".
	NamePrefix string

	// Format and Compression of the archive; default [archive.TarFormat]
	// with [archive.NewGzip] at [archive.DefaultGzipLevel]: a .tar.gz that mongorestore
	// reads once decrypted. Restore needs an embedder's own ones too.
	Format      archive.Format
	Compression archive.Compression

	// KDF sets the scrypt cost; nil is cipher's default.
	KDF *cipher.Options

	// Parallel is how many collections are read at once; default 4.
	Parallel int

	// Spill is where and past how many bytes in memory a tar archive
	// holds large collections in temporary files; see [archive.Spill].
	Spill archive.Spill

	// Progress, if set, is called as the backup advances, one call at a
	// time.
	Progress func(archive.Progress)

	// Logger receives the backup's logs; default slog.Default().
	// Passwords and keys are never logged.
	Logger *slog.Logger

	// Export, if set, copies each backup to a remote once it is ready.
	Export *ExportConfig
}

// DefaultStateFile is the default name of the file, in the state
// directory, that records the last backup's state.
const DefaultStateFile = "state.json"

// withDefaults checks c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Store == nil:
		return c, fmt.Errorf("%w: the Store is nil; use store.Dir or store.Memory", ErrInvalid)
	case c.StateDir == "":
		return c, fmt.Errorf("%w: the StateDir is empty; name a directory for the node's role and backup state", ErrInvalid)
	}
	if c.StateFile == "" {
		c.StateFile = DefaultStateFile
	}
	if c.NamePrefix == "" {
		c.NamePrefix = "backup-"
	}
	if c.Format == nil {
		c.Format = archive.TarFormat{}
	}
	if c.Compression == nil {
		c.Compression = archive.NewGzip(archive.DefaultGzipLevel)
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
