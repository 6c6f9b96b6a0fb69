// Package sensitive backs up sensitive configuration, such as encryption
// keys, into its own slot under its own password: the appliance's
// backup-sensitive verbs.
//
// The main backup deliberately leaves secrets out; a full recovery needs
// both. A sensitive [Backupper] keeps a slot like the main one (same verbs,
// states, status JSON and typed errors, same role check first), whose
// source is secret material instead of MongoDB collections: files and
// directory trees, secrets held in memory by the embedding program, and,
// optionally, MongoDB namespaces that hold secrets (the ones the main backup
// excludes).
//
// Secrets are written as documents of the pseudo-namespaces
// keepslot_sensitive.files (name, mode, modification time, data) and
// keepslot_sensitive.manifest (name, size, sha256), through the same
// archive, cipher and store as the main backup. Restore authenticates the
// whole file first, checks every file against the manifest and writes files
// 0600 (directories 0700) atomically into a target directory.
//
// A backup that Start accepts can be restored: a secret's name is a clean
// relative path of at most [MaxNameLen] bytes, [MaxNamePartLen] per element,
// no name is a directory of another ("a" and "a/b"), and a backup holds at
// most [MaxSecrets] secrets of at most [MaxSecretSize] bytes each. Restore
// checks the same of the file it is given, as it reads it, so that its
// memory stays small whatever the file holds, and checks the target
// directory for files and directories in the way; a restore refused by any
// check writes no secret. Files are read without following links, and only
// when the opened file is regular.
//
// A restore stages secrets in plaintext in a directory of its target
// (".keepslot-restore-" and 16 hex digits, 0700) until it has checked them
// all; a process killed midway leaves it there, and the next restore into
// the same target removes it ([RestoreReport].Removed).
//
// Secret contents never appear in logs, errors, status or progress events;
// names and counts may.
package sensitive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// The pseudo-namespace that holds secrets inside a sensitive backup.
const (
	DB                 = "keepslot_sensitive"
	FilesCollection    = "files"
	ManifestCollection = "manifest"
)

// StateFile is the sensitive backup's state file in the node's state
// directory, beside the main backup's.
const StateFile = "sensitive-state.json"

// Errors a user can cause, besides those of packages slot and restore.
var (
	// ErrNotRegular: a source path is a link, device, socket or pipe.
	ErrNotRegular = errcode.New(errcode.Invalid, "sensitive: not a regular file; sensitive backups hold regular files only, so name the file a link points to")
	// ErrTooLarge: a secret is larger than MaxSecretSize.
	ErrTooLarge = errcode.New(errcode.Invalid, "sensitive: secret too large for a sensitive backup")
	// ErrDuplicate: two sources give a secret of the same name.
	ErrDuplicate = errcode.New(errcode.Invalid, "sensitive: two secrets have the same name; rename one")
	// ErrUnsafePath: a secret's name, or a link in the restore directory,
	// would lead outside the restore directory.
	ErrUnsafePath = errcode.New(errcode.Invalid, "sensitive: secret name escapes the restore directory")
	// ErrExists: a file to restore exists and Overwrite is not set.
	ErrExists = errcode.New(errcode.Exists, "sensitive: file exists; restore with Overwrite to replace it")
	// ErrManifestMismatch: a restored secret differs from the manifest.
	ErrManifestMismatch = errcode.New(errcode.Corrupt, "sensitive: secret does not match the backup's manifest")
	// ErrBadName: a secret's name cannot be a file's path (see [Secret].Name).
	ErrBadName = errcode.New(errcode.Invalid, "sensitive: secret name cannot be restored as a file; rename the secret")
	// ErrNameConflict: one secret's name is a directory of another's, such
	// as "a" and "a/b". It matches ErrDuplicate too.
	ErrNameConflict = errcode.Sub(ErrDuplicate, "sensitive: a secret's name is a directory of another secret; rename one of them")
	// ErrInTheWay: the restore directory holds a file where a secret needs a
	// directory, or a directory where a secret is a file; Overwrite does not
	// replace either.
	ErrInTheWay = errcode.New(errcode.Exists, "sensitive: the restore directory holds a file where a directory must go or a directory where a file must go; move it away or restore into another directory")
	// ErrTooMany: a backup would hold more than MaxSecrets secrets.
	ErrTooMany = errcode.New(errcode.Invalid, "sensitive: too many secrets for a sensitive backup; back up fewer files, such as an archive of many")
	// ErrTooManyEntries: a file to restore holds more than MaxSecrets
	// secrets or manifest entries, which no backup holds: the file is
	// refused as corrupt, before anything is written.
	ErrTooManyEntries = errcode.New(errcode.Corrupt, "sensitive: the file holds more secrets or manifest entries than a sensitive backup may: it is damaged, or was not made by a sensitive backup")
	// ErrBusy: another restore is writing into the same directory.
	ErrBusy = errcode.New(errcode.InProgress, "sensitive: another restore is writing into this directory; wait for it to end")
)

// Limits of a sensitive backup, checked when it is made (Start fails) and
// again when it is restored, so that a restore's memory stays small
// whatever file it is given.
const (
	// MaxSecretSize is the largest secret: each travels as one BSON
	// document.
	MaxSecretSize = 15 << 20
	// MaxSecrets is the most secrets a backup holds.
	MaxSecrets = 10000
	// MaxNameLen is the longest name of a secret, in bytes.
	MaxNameLen = 1024
	// MaxNamePartLen is the longest element of a name between slashes, in
	// bytes: the longest file name of common filesystems.
	MaxNamePartLen = 255
)

// Config configures a sensitive Backupper. Store and StateDir are required.
type Config struct {
	// Sources of secrets; their names must not collide.
	Sources []Source

	// Mongo, if set, adds the MongoDB namespaces it selects (set its
	// Filter) to the backup; restore them with restore.Run, its
	// Options.Filter excluding DB+".*" (see [Restore]). Exclude them from
	// the main backup's Source.Filter.
	Mongo *backup.Source

	// Store is the sensitive backup's own slot, separate from the main
	// backup's.
	Store store.Store

	// StateDir is the node's state directory, the same as the main
	// backup's: the role is shared, the state file is sensitive's own.
	StateDir string

	// KDF sets the scrypt cost; nil is cipher's default.
	KDF *cipher.Options

	// Progress, if set, is called as the backup advances.
	Progress func(archive.Progress)

	// Logger; default slog.Default(). Secret contents are never logged.
	Logger *slog.Logger
}

// Backupper is the sensitive backup: the verbs of [slot.Backupper] over
// secrets.
type Backupper struct {
	slot *slot.Slot
}

var _ slot.Backupper = (*Backupper)(nil)

// New returns a sensitive Backupper for cfg.
func New(cfg Config) (*Backupper, error) {
	s, err := slot.New(&source{secrets: cfg.Sources, mongo: cfg.Mongo}, slot.Config{
		Store:      cfg.Store,
		StateDir:   cfg.StateDir,
		StateFile:  StateFile,
		NamePrefix: "backup-sensitive-",
		KDF:        cfg.KDF,
		Parallel:   1,
		Progress:   cfg.Progress,
		Logger:     cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("sensitive: set up the slot: %w", err)
	}
	return &Backupper{slot: s}, nil
}

// Start checks that a backup can be made and starts it; see
// [slot.Backupper].
func (b *Backupper) Start(ctx context.Context, password []byte) error {
	return b.slot.Start(ctx, password)
}

// Status reports the sensitive slot's state.
func (b *Backupper) Status(ctx context.Context) (slot.Status, error) { return b.slot.Status(ctx) }

// Retrieve writes the stored backup, encrypted as stored, to w.
func (b *Backupper) Retrieve(ctx context.Context, w io.Writer) (store.Info, error) {
	return b.slot.Retrieve(ctx, w)
}

// Delete removes the stored backup.
func (b *Backupper) Delete(ctx context.Context) error { return b.slot.Delete(ctx) }

// Wait blocks until the running backup, if any, has ended.
func (b *Backupper) Wait(ctx context.Context) (slot.Status, error) { return b.slot.Wait(ctx) }

// Cancel stops the running backup, if any, and waits until it has cleaned
// up.
func (b *Backupper) Cancel(ctx context.Context) error { return b.slot.Cancel(ctx) }

// Open opens the stored backup, encrypted as stored.
func (b *Backupper) Open(ctx context.Context) (store.Object, error) { return b.slot.Open(ctx) }

// Role is the node's backup role, shared with the main backup.
func (b *Backupper) Role() *slot.Role { return b.slot.Role() }

// Close cancels a running backup and waits for it to clean up.
func (b *Backupper) Close() error { return b.slot.Close() }

// fileDoc is a secret as stored in keepslot_sensitive.files.
type fileDoc struct {
	Name    string        `bson:"_id"`
	Mode    uint32        `bson:"mode"`
	ModTime bson.DateTime `bson:"mtime"`
	Data    []byte        `bson:"data"`
}

// manifestDoc is a secret's entry in keepslot_sensitive.manifest.
type manifestDoc struct {
	Name   string `bson:"_id"`
	Size   int64  `bson:"size"`
	SHA256 string `bson:"sha256"`
}

// source is the slot.Source of a sensitive backup. The slot runs one
// backup at a time, and so one plan at a time.
type source struct {
	secrets []Source
	mongo   *backup.Source

	mu       sync.Mutex
	manifest []manifestDoc // of the last Plan
}

// Plan walks the secrets once, so that refusals (links, sizes, duplicates)
// are reported by Start, and records the manifest: names, sizes and
// sha256s, never contents.
func (s *source) Plan(ctx context.Context) (slot.Plan, error) {
	var p slot.Plan
	var manifest []manifestDoc
	if err := s.walk(ctx, func(sec Secret) error {
		p.DataSize += int64(len(sec.Data))
		manifest = append(manifest, manifestDoc{Name: sec.Name, Size: int64(len(sec.Data)), SHA256: sha256Hex(sec.Data)})
		return nil
	}); err != nil {
		return p, err
	}
	s.mu.Lock()
	s.manifest = manifest
	s.mu.Unlock()
	p.Collections = []archive.Collection{
		{DB: DB, Name: ManifestCollection, Type: "collection"},
		{DB: DB, Name: FilesCollection, Type: "collection"},
	}
	if s.mongo != nil {
		mp, err := s.mongo.Plan(ctx)
		if err != nil {
			return p, err
		}
		p.Collections = append(p.Collections, mp.Collections...)
		p.DataSize += mp.DataSize
		p.ServerVersion = mp.ServerVersion
	}
	return p, nil
}

func (s *source) Documents(ctx context.Context, c archive.Collection, emit func([]byte) error) error {
	if c.DB != DB {
		return s.mongo.Documents(ctx, c, emit)
	}
	s.mu.Lock()
	manifest := s.manifest
	s.mu.Unlock()
	if c.Name == ManifestCollection {
		for _, m := range manifest {
			if err := emitDoc(m, emit); err != nil {
				return err
			}
		}
		return nil
	}
	i := 0
	err := s.walk(ctx, func(sec Secret) error {
		if i >= len(manifest) || manifest[i].Name != sec.Name || manifest[i].SHA256 != sha256Hex(sec.Data) {
			return fmt.Errorf("%w: %s", errChanged, sec.Name)
		}
		i++
		return emitDoc(fileDoc{Name: sec.Name, Mode: uint32(sec.Mode.Perm()), ModTime: bson.NewDateTimeFromTime(sec.ModTime), Data: sec.Data}, emit)
	})
	if err == nil && i != len(manifest) {
		err = fmt.Errorf("%w: %s", errChanged, manifest[i].Name)
	}
	return err
}

var errChanged = errors.New("sensitive: the secret changed while the backup ran; start it again")

func emitDoc(doc any, emit func([]byte) error) error {
	raw, err := bson.Marshal(doc)
	if err != nil {
		return fmt.Errorf("sensitive: encode a document: %w", err)
	}
	return emit(raw)
}

// walk calls fn for every secret of every source, refusing unsafe names,
// names that collide (see nameSet), more than MaxSecrets secrets and
// oversized secrets.
func (s *source) walk(ctx context.Context, fn func(Secret) error) error {
	names := newNameSet()
	for _, src := range s.secrets {
		err := src.Secrets(ctx, func(sec Secret) error {
			if err := checkName(sec.Name); err != nil {
				return err
			}
			if err := names.add(sec.Name); err != nil {
				return err
			}
			if len(sec.Data) > MaxSecretSize {
				return fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, sec.Name, len(sec.Data), MaxSecretSize)
			}
			return fn(sec)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
